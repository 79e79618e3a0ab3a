"""Points → the database: one metric resolution and one ``executemany`` per transaction.

Every write goes through here. ``write_requests`` is the transaction itself — several
requests' points, their idempotency receipts and their answers, committed together — which
the store runs for the group-commit thread of each process and for the queue's drains alike.
"""

from collections import Counter
from dataclasses import dataclass, replace

from app.core.writes import WriteResult, follow, replay
from app.db import dialects, metrics, receipts, series
from app.db import rollups as rollup_rows
from app.db.known import KnownSeries
from app.db.schema import metric_points

_INSERT_POINTS = metric_points.insert()


@dataclass(frozen=True)
class WriteOptions:
    """How writes are kept under a deployment's settings."""

    keep_rollups: bool = True  # METRICS_ROLLUPS
    keep_raw: bool = True  # raw points too, unless METRICS_RETENTION_DAYS=0 (rollups only)
    max_metrics: int | None = None  # METRICS_MAX_METRICS, per tenant (unless its own)
    max_series: int | None = None  # METRICS_MAX_SERIES_PER_METRIC
    tenant_max_series: int | None = None  # TENANT_MAX_SERIES (unless the tenant's own)


def storage_options(config):
    """The WriteOptions of a deployment's settings (the group writer and the queue's drains
    write alike)."""
    return WriteOptions(
        config["METRICS_ROLLUPS"],
        config["METRICS_RETENTION_DAYS"] > 0,
        config["METRICS_MAX_METRICS"],
        config["METRICS_MAX_SERIES_PER_METRIC"],
        config["TENANT_MAX_SERIES"],
    )


class RelationalPoints:
    """Where ``write_requests`` puts the points: this transaction's database. (ClickHouse's
    counterpart, app/db/clickhouse/writes.py, keeps them for after the commit.)"""

    token = None  # the points are in this transaction: a receipt is done when it commits

    def insert(self, conn, rows, resolved, options):
        """Insert the point rows and their rollups."""
        _insert(conn, rows, resolved, options)

    def settle(self, conn, receipt, recorded, now):
        """A receipt left pending by ClickHouse writes (POINTS_URL since unset): its answer
        stands. False: not taken over."""
        return False


RELATIONAL = RelationalPoints()


def write_requests(conn, requests, now, options=None, known=None, sink=RELATIONAL):
    """Apply several requests in one transaction; returns each one's Answer (or CONFLICT).
    Metrics and series are resolved tenant by tenant (new ones made within their limits), the
    points inserted with their rollups (per metric, and per series for tagged metrics), the
    receipts recorded. ``known``: the process's KnownSeries, so series already seen cost no
    lookup. ``sink``: where the points go (``insert``), the token receipts stay pending with
    until they land (``token``: None when they land in this transaction) and what a receipt
    found pending becomes (``settle``)."""
    options = options or WriteOptions()
    known = known if known is not None else KnownSeries()
    answers, fresh, followers, recorded = _settle_receipts(conn, requests, now, sink)
    wanted, tag_sets = _wanted(requests[i] for i in fresh)
    resolved, placed = {}, {}
    for tenant_id in sorted({tenant_id for tenant_id, _ in wanted}):  # one lock order
        _resolve_tenant(conn, tenant_id, wanted, tag_sets, now, options, known, resolved, placed)
    _touch(conn, resolved, placed, now, known)
    rows = []
    for index in fresh:
        points = requests[index].points
        result = _split(points, resolved, placed, rows)
        stored = Counter(points[position].type for position in result.written)
        answers[index] = replace(requests[index].respond(result), stored=stored)
    if rows:
        sink.insert(conn, rows, resolved, options)
    receipts.record_answers(
        conn,
        [
            (requests[i].receipt, answers[i].status, answers[i].text())
            for i in fresh
            if requests[i].receipt and requests[i].receipt.remember_answer
        ],
        pending=sink.token if rows else None,
    )
    for index, leader in followers.items():
        earlier = recorded.get(requests[leader].receipt.ident)
        if earlier is not None:  # the key was applied before this group
            answers[index] = replay(requests[index].receipt, earlier)
        else:
            answers[index] = follow(requests[index], requests[leader], answers[leader])
    return answers


def _wanted(requests):
    """({metric key: type wanted if new}, {metric key: {tags_hash: canonical text}}) of the
    requests (a metric key is ``(tenant_id, name)``)."""
    wanted, tag_sets = {}, {}
    for request in requests:
        for point in request.points:
            key = point.key
            wanted.setdefault(key, point.type)
            tag_sets.setdefault(key, {})[point.tags_hash] = point.tags
    return wanted, tag_sets


def _resolve_tenant(conn, tenant_id, wanted, tag_sets, now, options, known, resolved, placed):
    """One tenant's metrics (into ``resolved``, by metric key) and series (into ``placed``, by
    (metric key, tags_hash); None: refused for a series limit). Series not known yet are found
    or made under their metric's exclusive lock — taken first by ``resolve`` for the names
    expected to need it, so it is rarely an upgrade — and then the tenant's."""
    names = {name: kind for (tenant, name), kind in wanted.items() if tenant == tenant_id}
    sets = {name: s for (tenant, name), s in tag_sets.items() if tenant == tenant_id}
    exclusive = [name for name, s in sets.items() if not known.has_all((tenant_id, name), s)]
    found = metrics.resolve(conn, tenant_id, names, now, options.max_metrics, exclusive)
    resolved.update((metric.key, metric) for metric in found.values())
    missing = []
    for name, name_sets in sets.items():
        metric = found.get(name)
        if metric is None:
            continue
        ids = {h: known.get(metric.key, metric.id, h) for h in name_sets}
        placed.update(((metric.key, h), series_id) for h, series_id in ids.items())
        unknown = {h: name_sets[h] for h, series_id in ids.items() if series_id is None}
        if unknown:
            if name not in exclusive:
                metrics.lock(conn, metric.id)
            missing.append((metric, unknown))
    if missing:
        _make_series(conn, tenant_id, missing, now, options, known, resolved, placed)


def _make_series(conn, tenant_id, missing, now, options, known, resolved, placed):
    """Find or make the series not known yet ([(Metric, {tags_hash: text})])."""
    made = series.make_many(
        conn, tenant_id, missing, now, options.max_series, options.tenant_max_series
    )
    for metric, unknown in missing:
        outcome = made[metric.id]
        if outcome.became_tagged:
            resolved[metric.key] = replace(metric, tagged=True)
        found = series.find(conn, metric.id, set(unknown) - set(outcome.made) - outcome.refused)
        for tags_hash in unknown:
            series_id = outcome.made.get(tags_hash, found.get(tags_hash))
            placed[metric.key, tags_hash] = series_id
            if series_id is not None:
                known.put(metric.key, metric.id, tags_hash, series_id, now)


def _touch(conn, resolved, placed, now, known):
    """Refresh last_seen of the series written now, at most hourly each."""
    stale = {}
    for (key, tags_hash), series_id in placed.items():
        if series_id is not None and known.stale(key, tags_hash, now):
            stale.setdefault(resolved[key].id, []).append(series_id)
    for metric_id, series_ids in stale.items():
        series.touch(conn, metric_id, series_ids, now)


def _insert(conn, rows, resolved, options):
    """The points, their per-metric rollups, and the per-series ones of tagged metrics (value
    metrics' with sketches)."""
    if options.keep_raw:
        conn.execute(_INSERT_POINTS, rows)
    if not options.keep_rollups:
        return
    exact_all = dialects.of(conn).EXACT_ALL
    sketched = frozenset(metric.id for metric in resolved.values() if metric.type == "value")
    rollup_rows.upsert(conn, rollup_rows.summarize(rows, exact_all, sketched=sketched))
    tagged = {metric.id for metric in resolved.values() if metric.tagged}
    per_series = [row for row in rows if row["metric_id"] in tagged]
    if per_series:
        summaries = rollup_rows.summarize(per_series, exact_all, True, sketched)
        rollup_rows.upsert(conn, summaries, per_series=True)


def _split(points, resolved, placed, rows):
    """Add the points that fit their metric's type to ``rows``; the WriteResult of a request."""
    result = WriteResult()
    for position, point in enumerate(points):
        key = point.key
        metric = resolved.get(key)
        if metric is None:
            result.limited.append(position)
            continue
        if metric.type != point.type:
            result.mismatched.append((position, metric))
            continue
        series_id = placed.get((key, point.tags_hash))
        if series_id is None:
            result.series_limited.append(position)
            continue
        result.written.append(position)
        rows.append(
            {
                "metric_id": metric.id,
                "series_id": series_id,
                "recorded_at": point.recorded_at,
                "value": point.value,
            }
        )
    return result


def _settle_receipts(conn, requests, now, sink):
    """Claim the receipts: answers already known, the requests to apply, and the followers
    (a second request with a key already in this group, answered like its leader). A receipt
    found pending is settled by ``sink``: its answer stands, or it is taken over and
    applied again."""
    answers = [None] * len(requests)
    leaders, followers = {}, {}
    for index, request in enumerate(requests):
        if request.receipt is None:
            continue
        ident = request.receipt.ident
        if ident in leaders:
            followers[index] = leaders[ident]
        else:
            leaders[ident] = index
    claimed = receipts.claim(conn, [requests[i].receipt for i in leaders.values()], now, sink.token)
    recorded = {}
    for ident, row in claimed.items():
        receipt = requests[leaders[ident]].receipt
        if row is not None and not (row.pending and sink.settle(conn, receipt, row, now)):
            recorded[ident] = row
    for ident, row in recorded.items():
        index = leaders[ident]
        answers[index] = replay(requests[index].receipt, row)
    fresh = [i for i in range(len(requests)) if answers[i] is None and i not in followers]
    return answers, fresh, followers, recorded
