"""Copying the points kept in DATABASE_URL to ClickHouse, for an install moving to POINTS_URL
(``flask points copy``): metric by metric, a UTC day at a time, resumable, checked.

Each (metric, day) goes in one insert under a token of its own (made from the metric and the
day), and its rows carry it in ``batch``. A day whose copied rows are all there is skipped; one
cut short is sent again under the same token, which ClickHouse drops where it had landed (the
rollups' views included): running the copy again finishes what a crash left. Points written to
ClickHouse by the service itself carry other tokens and are never touched, so the copy may run
while the service writes there (after the switch). Each copied day is checked: count, exact
sum, minimum and maximum as ClickHouse holds them against the relational rows.
"""

import hashlib
from datetime import timedelta

from sqlalchemy import select

from app.db import rebuild
from app.db.rollups import Partial
from app.db.schema import metric_points
from app.db.transaction import run_read

DAY = timedelta(days=1)


class CopyMismatch(RuntimeError):
    """A copied day does not hold in ClickHouse what the relational rows hold."""


def day_token(metric_id, day):
    """The insert token (32 characters) of one metric's day."""
    return hashlib.md5(f"copy:{metric_id}:{day:%Y-%m-%d}".encode()).hexdigest()


def _relational_rows(conn, metric_id, start, end):
    columns = (metric_points.c.series_id, metric_points.c.recorded_at, metric_points.c.value)
    query = (
        select(*columns)
        .where(
            metric_points.c.metric_id == metric_id,
            metric_points.c.recorded_at >= start,
            metric_points.c.recorded_at < end,
        )
        .order_by(metric_points.c.recorded_at, metric_points.c.id)
    )
    return [
        {"metric_id": metric_id, "series_id": s, "recorded_at": t, "value": v}
        for s, t, v in conn.execute(query)
    ]


def copy_points(store, engine, start, end, metric=None, progress=None):
    """Copy the relational points of every metric (or the one keyed ``metric``) in
    [start, end) (whole days) to ``engine`` (ClickHouse); what was done."""
    result = {"metrics": 0, "days_copied": 0, "days_already_there": 0, "points": 0}
    day_start = start.replace(hour=0, minute=0, second=0, microsecond=0)
    for metric_id, name, *_ in rebuild.metric_ids(store, metric):
        result["metrics"] += 1
        day = day_start
        while day < end:
            rows = run_read(store.write, _relational_rows, metric_id, day, day + DAY)
            if rows:
                done = _copy_day(engine, metric_id, day, rows)
                result["days_copied" if done else "days_already_there"] += 1
                result["points"] += len(rows)
            day += DAY
        if progress is not None:
            progress(name)
    return result


def _copy_day(engine, metric_id, day, rows):
    """Copy one metric's day unless all of it is there; True when it was sent."""
    token = day_token(metric_id, day)
    there = engine.copied(metric_id, day, day + DAY, token)
    expected = Partial.of([row["value"] for row in rows], exact_all=False)
    if there.agrees(expected):
        return False
    engine.insert(rows, token)
    there = engine.copied(metric_id, day, day + DAY, token)
    if not there.agrees(expected):
        raise CopyMismatch(
            f"metric {metric_id} on {day:%Y-%m-%d}: ClickHouse holds {there}, the relational "
            f"rows {expected}"
        )
    return True
