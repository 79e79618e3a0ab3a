"""Removing expired points, in steps that never hold a lock long.

The cutoff is a UTC day boundary on both backends, so both keep exactly the same points: a
point goes when ``recorded_at < cutoff``. On MySQL whole expired daily partitions are dropped;
whatever else is expired (every point on SQLite) goes in chunks of at most ``chunk`` rows a
statement, walking one metric's primary-key range at a time (the points table has no index on
``recorded_at`` alone, on purpose). Functions take a connection; each chunk is its own
transaction, committed by the caller's loop in ``app/jobs/maintenance.py``.
"""

from datetime import datetime, time, timedelta

from sqlalchemy import exists, func, select

from app.db import dialects, partitions
from app.db.schema import metric_points, metrics


def expired_partitions(conn, before):
    """Daily partitions whose every row is before ``before`` (a day boundary)."""
    return [
        partitions.partition_name(day)
        for day in partitions.daily(conn)
        if datetime.combine(day + timedelta(days=1), time()) <= before
    ]


def metrics_with_points_before(conn, before):
    """Ids of the metrics (deleted ones included) that have a point before ``before``."""
    older = (
        select(metric_points.c.metric_id)
        .where(metric_points.c.metric_id == metrics.c.id, metric_points.c.recorded_at < before)
        .limit(1)
    )
    return list(conn.scalars(select(metrics.c.id).where(exists(older)).order_by(metrics.c.id)))


def count_before(conn, metric_id, before):
    """How many of a metric's points are before ``before``."""
    query = select(func.count()).where(
        metric_points.c.metric_id == metric_id, metric_points.c.recorded_at < before
    )
    return conn.execute(query).scalar()


def delete_chunk(conn, metric_id, before, chunk):
    """Delete up to ``chunk`` of a metric's points before ``before`` (None: all of them),
    oldest first, on its primary-key range; returns how many went."""
    sql = dialects.of(conn)
    statement = sql.delete_oldest(metric_points, "metric_id", "recorded_at", before is not None)
    params = {"key": metric_id, "chunk": chunk}
    if before is not None:
        params["before"] = sql.bind_moment(before)
    return conn.execute(statement, params).rowcount


def delete_metric_rows(conn, table, metric_id, chunk):
    """Delete up to ``chunk`` of a deleted metric's rows from ``table`` (any table keyed by
    ``metric_id``); returns how many went."""
    statement = dialects.of(conn).delete_some(table, "metric_id")
    return conn.execute(statement, {"key": metric_id, "chunk": chunk}).rowcount
