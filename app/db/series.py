"""The series catalogue: each metric's series (series 0 is its untagged one; tagged ones are
numbered from 1 within the metric), and each (metric, tag key, value) with how many series
carry it, for the tag listings. Functions take a connection and never commit.

Series are made by the write transaction that first needs them, while it holds the metric
row's exclusive lock (app/db/metrics.py ``resolve``), so counting them against the limit and
numbering them cannot race another server. The first tagged series of a metric also copies
its rollups into series 0's per-series rollups (until then every point was untagged) and
marks the metric ``tagged``: from then on every point of it keeps per-series rollups too.
"""

import json
from dataclasses import dataclass, field

from sqlalchemy import bindparam, case, func, select, text, update

from app.core.tags import UNTAGGED_HASH, tags_from_text
from app.db import dialects, tenants
from app.db.schema import metrics, series, series_tags

TOUCH_EVERY_SECONDS = 3600  # last_seen is refreshed at most this often per series


@dataclass
class Made:
    """What making a metric's series did: {tags_hash: series_id} made, the hashes refused for
    the series limit, and whether the metric became tagged."""

    made: dict = field(default_factory=dict)
    refused: set = field(default_factory=set)
    became_tagged: bool = False


def find(conn, metric_id, hashes):
    """{tags_hash: series_id} of the given hashes that the metric has."""
    if not hashes:
        return {}
    query = select(series.c.tags_hash, series.c.series_id).where(
        series.c.metric_id == metric_id, series.c.tags_hash.in_(sorted(hashes))
    )
    return {row.tags_hash: row.series_id for row in conn.execute(query)}


def make_many(conn, tenant_id, wanted, now, max_series, tenant_max_series):
    """Make the new series ``wanted`` ([(Metric, {tags_hash: canonical text})]) of one
    tenant's metrics, each while its metric has fewer than ``max_series`` and the tenant fewer
    than its limit (its own, else ``tenant_max_series``); the caller holds the metrics' rows'
    exclusive locks, and this takes the tenant's. {metric id: Made}."""
    held = tenants.lock(conn, tenant_id)
    limit = tenant_max_series if held.max_series is None else held.max_series
    room = None if limit is None else max(0, limit - held.series)
    outcomes, made = {}, 0
    for metric, sets in wanted:
        outcome = _make(conn, metric, sets, now, max_series, room)
        outcomes[metric.id] = outcome
        made += len(outcome.made)
        room = None if room is None else room - len(outcome.made)
    tenants.add_series(conn, tenant_id, made)
    return outcomes


def _make(conn, metric, wanted, now, max_series, tenant_room=None):
    """Make the series ``wanted`` ({tags_hash: canonical text}, in arrival order) of ``metric``
    that it has not got, in that order, while it has fewer than ``max_series`` (and at most
    ``tenant_room`` of them); the caller holds the metric row's exclusive lock and keeps the
    tenant's count (``make_many``). A Made."""
    outcome = Made()
    have = find(conn, metric.id, set(wanted))
    missing = [h for h in wanted if h not in have]  # first come, first made
    if not missing:
        return outcome
    count, top = conn.execute(
        select(func.count(), func.max(series.c.series_id)).where(series.c.metric_id == metric.id)
    ).one()
    room = max(0, max_series - count)
    if tenant_room is not None:
        room = min(room, tenant_room)
    outcome.refused = set(missing[room:])
    rows = []
    next_id = (top or 0) + 1
    for tags_hash in missing[:room]:
        series_id = 0 if tags_hash == UNTAGGED_HASH else next_id
        next_id += series_id != 0
        outcome.made[tags_hash] = series_id
        rows.append(_row(metric.id, series_id, tags_hash, wanted[tags_hash], now))
    if rows:
        conn.execute(series.insert(), rows)
        _count_tags(conn, metric.id, [row["tags"] for row in rows])
        outcome.became_tagged = not metric.tagged and any(r["series_id"] for r in rows)
    if outcome.became_tagged:
        _start_series_rollups(conn, metric.id)
    return outcome


def _row(metric_id, series_id, tags_hash, tags_text, now):
    return {
        "metric_id": metric_id,
        "series_id": series_id,
        "tags_hash": tags_hash,
        "tags": tags_text,
        "first_seen": now,
        "last_seen": now,
    }


def _count_tags(conn, metric_id, tag_texts):
    """Add the new series' tags to the (key, value) → series counts."""
    counts = {}
    for tags_text in tag_texts:
        for pair in tags_from_text(tags_text).items():
            counts[pair] = counts.get(pair, 0) + 1
    if counts:
        rows = [
            {"metric_id": metric_id, "tag_key": key, "tag_value": value, "series_count": n}
            for (key, value), n in sorted(counts.items())
        ]
        conn.execute(text(dialects.of(conn).count_series_tags(conn.dialect)), rows)


def _start_series_rollups(conn, metric_id):
    """The metric's first tagged series: copy its rollups into series 0's (every point so far
    was untagged), and mark it tagged."""
    for tier in ("minute", "hour"):
        conn.execute(
            text(
                f"INSERT INTO series_rollups_{tier} "
                "(metric_id, series_id, bucket, n, total, residual, vmin, vmax) "
                f"SELECT metric_id, 0, bucket, n, total, residual, vmin, vmax "
                f"FROM metric_rollups_{tier} WHERE metric_id = :metric_id"
            ),
            {"metric_id": metric_id},
        )
    conn.execute(update(metrics).where(metrics.c.id == metric_id).values(tagged=1))


def touch(conn, metric_id, series_ids, now):
    """Record that these series got points now (last_seen)."""
    conn.execute(
        update(series)
        .where(series.c.metric_id == metric_id, series.c.series_id.in_(sorted(series_ids)))
        .values(last_seen=now)
    )


def catalogue(conn, metric_id):
    """[(series_id, tags dict)] of a metric, by series id."""
    query = (
        select(series.c.series_id, series.c.tags)
        .where(series.c.metric_id == metric_id)
        .order_by(series.c.series_id)
    )
    return [(row.series_id, json.loads(row.tags)) for row in conn.execute(query)]


def tag_keys(conn, metric_id):
    """[(key, how many distinct values)] of a metric's tags, by key."""
    query = (
        select(series_tags.c.tag_key, func.count())
        .where(series_tags.c.metric_id == metric_id)
        .group_by(series_tags.c.tag_key)
        .order_by(series_tags.c.tag_key)
    )
    return [(key, count) for key, count in conn.execute(query)]


def tag_values(conn, metric_id, key, prefix, limit, offset):
    """[(value, series count)] of one tag key, values starting with ``prefix``, in byte order,
    one page (``limit`` rows from ``offset``)."""
    query = select(series_tags.c.tag_value, series_tags.c.series_count).where(
        series_tags.c.metric_id == metric_id, series_tags.c.tag_key == key
    )
    if prefix:
        query = query.where(series_tags.c.tag_value >= prefix).where(
            series_tags.c.tag_value < bindparam("upper", _after_prefix(prefix))
        )
    query = query.order_by(series_tags.c.tag_value).limit(limit).offset(offset)
    return [(value, count) for value, count in conn.execute(query)]


def _after_prefix(prefix):
    """The least text greater than every text starting with ``prefix`` (its last character
    raised by one), so a prefix is an index range in binary order."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def totals(conn, near):
    """(live metrics, their series, the metrics with more than ``near`` series): one pass over
    the catalogue's key, for /metrics."""
    per_metric = (
        select(func.count().label("n"))
        .select_from(series.join(metrics, metrics.c.id == series.c.metric_id))
        .where(metrics.c.deleted_at.is_(None))
        .group_by(series.c.metric_id)
        .subquery()
    )
    series_total, crowded = conn.execute(
        select(
            func.coalesce(func.sum(per_metric.c.n), 0),
            func.coalesce(func.sum(case((per_metric.c.n > near, 1), else_=0)), 0),
        )
    ).one()
    live = conn.execute(
        select(func.count()).select_from(metrics).where(metrics.c.deleted_at.is_(None))
    ).scalar_one()
    return live, int(series_total), int(crowded)


def counts(conn, metric_ids):
    """{metric_id: how many series it has} of the given metrics."""
    if not metric_ids:
        return {}
    query = (
        select(series.c.metric_id, func.count())
        .where(series.c.metric_id.in_(sorted(metric_ids)))
        .group_by(series.c.metric_id)
    )
    return dict(conn.execute(query).all())
