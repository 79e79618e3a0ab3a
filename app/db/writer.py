"""Points → the database: one metric resolution and one ``executemany`` per transaction.

This is the one seam every write goes through, so batching several requests into one commit,
or handing points to a queue, changes this module and nothing above it.
"""

from dataclasses import dataclass, field

from app.db import metrics, run_in_transaction
from app.db.schema import metric_points
from app.timeutil import utcnow


@dataclass(frozen=True)
class Point:
    """One validated point; ``recorded_at`` is naive UTC."""

    name: str
    type: str
    value: float
    recorded_at: object


@dataclass
class WriteResult:
    """Which points were stored, and which clashed with an existing metric's type."""

    written: list = field(default_factory=list)
    mismatched: list = field(default_factory=list)  # (position, Metric)


def _write(conn, points, cache):
    wanted = {}
    for point in points:
        wanted.setdefault(point.name, point.type)
    resolved = metrics.resolve(conn, wanted, cache, utcnow())
    result = WriteResult()
    rows = []
    for position, point in enumerate(points):
        metric = resolved[point.name]
        if metric.type != point.type:
            result.mismatched.append((position, metric))
            continue
        result.written.append(position)
        rows.append(
            {"metric_id": metric.id, "recorded_at": point.recorded_at, "value": point.value}
        )
    if rows:
        conn.execute(metric_points.insert(), rows)
    return result, resolved


def store(db, points):
    """Write ``points`` in one committed transaction; returns a WriteResult.

    Points whose type differs from their metric's are skipped and reported, not written.
    """
    result, resolved = run_in_transaction(db.write, _write, points, db.metric_cache)
    db.metric_cache.update(resolved)  # only after commit: a rolled-back new metric stays out
    return result
