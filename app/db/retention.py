"""Removing expired points, in steps that never hold a lock long.

The cutoff is a UTC day boundary on both backends, so both keep exactly the same points: a
point goes when ``recorded_at < cutoff``. On MySQL whole expired daily partitions are dropped;
whatever else is expired (every point on SQLite) goes in chunks of at most ``chunk`` rows a
statement, walking one metric's primary-key range at a time (the points table has no index on
``recorded_at`` alone, on purpose). Functions take a connection; each chunk is its own
transaction, committed by the caller's loop in ``app/jobs/maintenance.py``.
"""

from datetime import datetime, time, timedelta

from sqlalchemy import delete, exists, func, select, text

from app.db import partitions
from app.db.schema import metric_points, metrics


def cutoff(now, keep_days):
    """The first instant kept: ``keep_days`` whole UTC days before today's start."""
    return datetime.combine(now.date(), time()) - timedelta(days=keep_days)


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


# MySQL forbids a subquery on the table a DELETE is deleting from; DELETE … ORDER BY … LIMIT
# walks the same primary-key range (MySQL-only SQL, here in one place).
_MYSQL_DELETE = {
    True: text(
        "DELETE FROM metric_points WHERE metric_id = :metric_id AND recorded_at < :before "
        "ORDER BY recorded_at LIMIT :chunk"
    ),
    False: text(
        "DELETE FROM metric_points WHERE metric_id = :metric_id ORDER BY recorded_at LIMIT :chunk"
    ),
}


def delete_chunk(conn, metric_id, before, chunk):
    """Delete up to ``chunk`` of a metric's points before ``before`` (None: all of them),
    oldest first, on its primary-key range; returns how many went."""
    if conn.dialect.name != "sqlite":
        params = {"metric_id": metric_id, "before": before, "chunk": chunk}
        return conn.execute(_MYSQL_DELETE[before is not None], params).rowcount
    condition = [metric_points.c.metric_id == metric_id]
    if before is not None:
        condition.append(metric_points.c.recorded_at < before)
    oldest = (
        select(metric_points.c.id)
        .where(*condition)
        .order_by(metric_points.c.recorded_at)
        .limit(chunk)
    )
    return conn.execute(delete(metric_points).where(metric_points.c.id.in_(oldest))).rowcount


def delete_metric_rows(conn, table, metric_id, chunk):
    """Delete up to ``chunk`` of a deleted metric's rows from ``table`` (any table keyed by
    ``metric_id``); returns how many went."""
    if conn.dialect.name != "sqlite":
        statement = (
            delete(table)
            .where(table.c.metric_id == metric_id)
            .with_dialect_options(mysql_limit=chunk)
        )
        return conn.execute(statement).rowcount
    some = text(f"SELECT rowid FROM {table.name} WHERE metric_id = :metric_id LIMIT :chunk")
    statement = text(f"DELETE FROM {table.name} WHERE rowid IN ({some.text})")
    return conn.execute(statement, {"metric_id": metric_id, "chunk": chunk}).rowcount
