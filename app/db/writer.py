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
    max_metrics: int | None = None  # METRICS_MAX_METRICS
    max_series: int | None = None  # METRICS_MAX_SERIES_PER_METRIC


def storage_options(config):
    """The WriteOptions of a deployment's settings (the group writer and the queue's drains
    write alike)."""
    return WriteOptions(
        config["METRICS_ROLLUPS"],
        config["METRICS_RETENTION_DAYS"] > 0,
        config["METRICS_MAX_METRICS"],
        config["METRICS_MAX_SERIES_PER_METRIC"],
    )


def write_requests(conn, requests, now, options=None, known=None):
    """Apply several requests in one transaction; returns each one's Answer (or CONFLICT).
    Metrics and series are resolved (new ones made within their limits), the points inserted
    with their rollups (per metric, and per series for tagged metrics), the receipts recorded.
    ``known``: the process's KnownSeries, so series already seen cost no lookup."""
    options = options or WriteOptions()
    known = known if known is not None else KnownSeries()
    answers, fresh, followers, recorded = _settle_receipts(conn, requests, now)
    wanted, tag_sets = _wanted(requests[i] for i in fresh)
    exclusive = [name for name, sets in tag_sets.items() if not known.has_all(name, sets)]
    resolved = metrics.resolve(conn, wanted, now, options.max_metrics, exclusive)
    placed = _place_series(conn, resolved, tag_sets, exclusive, now, options, known)
    rows = []
    for index in fresh:
        points = requests[index].points
        result = _split(points, resolved, placed, rows)
        stored = Counter(points[position].type for position in result.written)
        answers[index] = replace(requests[index].respond(result), stored=stored)
    if rows:
        _insert(conn, rows, resolved, options)
    receipts.record_answers(
        conn,
        [
            (requests[i].receipt, answers[i].status, answers[i].text())
            for i in fresh
            if requests[i].receipt and requests[i].receipt.remember_answer
        ],
    )
    for index, leader in followers.items():
        earlier = recorded.get(requests[leader].receipt.ident)
        if earlier is not None:  # the key was applied before this group
            answers[index] = replay(requests[index].receipt, earlier)
        else:
            answers[index] = follow(requests[index], requests[leader], answers[leader])
    return answers


def _wanted(requests):
    """({name: type wanted if new}, {name: {tags_hash: canonical text}}) of the requests."""
    wanted, tag_sets = {}, {}
    for request in requests:
        for point in request.points:
            wanted.setdefault(point.name, point.type)
            tag_sets.setdefault(point.name, {})[point.tags_hash] = point.tags
    return wanted, tag_sets


def _place_series(conn, resolved, tag_sets, exclusive, now, options, known):
    """{(name, tags_hash): series_id} of every tag set (None: refused for the series limit).
    Series not known yet are found or made under the metric's exclusive lock (taken first by
    ``resolve`` for the ``exclusive`` names, so it is rarely an upgrade)."""
    placed = {}
    for name, sets in tag_sets.items():
        metric = resolved.get(name)
        if metric is None:
            continue
        ids = {tags_hash: known.get(name, metric.id, tags_hash) for tags_hash in sets}
        missing = {h: sets[h] for h, series_id in ids.items() if series_id is None}
        if missing:
            if name not in exclusive:
                metrics.lock(conn, metric.id)
            ids.update(_made(conn, metric, missing, now, options, known, resolved))
        placed.update(((name, tags_hash), series_id) for tags_hash, series_id in ids.items())
    _touch(conn, resolved, placed, now, known)
    return placed


def _made(conn, metric, missing, now, options, known, resolved):
    """{tags_hash: series_id or None} of the tag sets not known yet: found, or made."""
    outcome = series.make(conn, metric, missing, now, options.max_series)
    if outcome.became_tagged:
        resolved[metric.name] = replace(metric, tagged=True)
    found = series.find(conn, metric.id, set(missing) - set(outcome.made) - outcome.refused)
    ids = {}
    for tags_hash in missing:
        ids[tags_hash] = outcome.made.get(tags_hash, found.get(tags_hash))
        if ids[tags_hash] is not None:
            known.put(metric.name, metric.id, tags_hash, ids[tags_hash], now)
    return ids


def _touch(conn, resolved, placed, now, known):
    """Refresh last_seen of the series written now, at most hourly each."""
    stale = {}
    for (name, tags_hash), series_id in placed.items():
        if series_id is not None and known.stale(name, tags_hash, now):
            stale.setdefault(resolved[name].id, []).append(series_id)
    for metric_id, series_ids in stale.items():
        series.touch(conn, metric_id, series_ids, now)


def _insert(conn, rows, resolved, options):
    """The points, their per-metric rollups, and the per-series ones of tagged metrics."""
    if options.keep_raw:
        conn.execute(_INSERT_POINTS, rows)
    if not options.keep_rollups:
        return
    exact_all = dialects.of(conn).EXACT_ALL
    rollup_rows.upsert(conn, rollup_rows.summarize(rows, exact_all))
    tagged = {metric.id for metric in resolved.values() if metric.tagged}
    per_series = [row for row in rows if row["metric_id"] in tagged]
    if per_series:
        summaries = rollup_rows.summarize(per_series, exact_all, per_series=True)
        rollup_rows.upsert(conn, summaries, per_series=True)


def _split(points, resolved, placed, rows):
    """Add the points that fit their metric's type to ``rows``; the WriteResult of a request."""
    result = WriteResult()
    for position, point in enumerate(points):
        metric = resolved.get(point.name)
        if metric is None:
            result.limited.append(position)
            continue
        if metric.type != point.type:
            result.mismatched.append((position, metric))
            continue
        series_id = placed.get((point.name, point.tags_hash))
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


def _settle_receipts(conn, requests, now):
    """Claim the receipts: answers already known, the requests to apply, and the followers
    (a second request with a key already in this group, answered like its leader)."""
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
    claimed = receipts.claim(conn, [requests[i].receipt for i in leaders.values()], now)
    recorded = {ident: row for ident, row in claimed.items() if row is not None}
    for ident, row in recorded.items():
        index = leaders[ident]
        answers[index] = replay(requests[index].receipt, row)
    fresh = [i for i in range(len(requests)) if answers[i] is None and i not in followers]
    return answers, fresh, followers, recorded


def recorded_answer(conn, receipt, now):
    """The answer an earlier request with this receipt's key got (or CONFLICT), or None."""
    recorded = receipts.find(conn, receipt, now)
    return None if recorded is None else replay(receipt, recorded)
