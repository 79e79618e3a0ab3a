"""Rebuilding and checking the rollups from raw points: ``flask rollups rebuild|check``.

Rebuild is for an install that had points before rollups existed (or ran with METRICS_ROLLUPS
off), and after a restore: it recomputes each metric's rollups from its raw points a day at a
time, each day in one REPEATABLE READ transaction that first locks that day's rollup rows, so
writers adding points meanwhile lose nothing. Rebuilding every metric from the raw points'
retention horizon on makes the tiers complete from there (their watermark). It refuses ranges
whose raw points have expired: those would rebuild as zeros.
"""

from datetime import timedelta

from sqlalchemy import select

from app.config import raw_keep_days
from app.core.constants import TIER_SECONDS
from app.core.timeutil import ceil_to, floor_to, horizon, utcnow
from app.db import rollups
from app.db.schema import metrics
from app.db.transaction import run_in_transaction

DAY = timedelta(days=1)
HOUR = TIER_SECONDS["hour"]  # seconds: rebuilds work in whole hours


class NothingToDo(ValueError):
    """A command asked of rollups or points that this points engine has no use for."""


class RangeExpired(ValueError):
    """A rebuild was asked for a range whose raw points are no longer kept."""


def default_range(settings, now):
    """[the raw points' horizon, now + the future allowance rounded up to the hour)."""
    latest = now + timedelta(seconds=settings["METRICS_MAX_FUTURE_SECONDS"]) + timedelta(minutes=1)
    end = ceil_to(latest, HOUR)
    return horizon(now, raw_keep_days(settings)), end


def _metric_ids(conn, key):
    """(id, name, tagged, sketched) of every live metric, or of the one with metric key
    ``key`` (sketched: a value metric, whose rollups keep sketches)."""
    columns = (metrics.c.id, metrics.c.name, metrics.c.tagged, metrics.c.type)
    query = select(*columns).where(metrics.c.deleted_at.is_(None))
    if key is not None:
        query = query.where(metrics.c.tenant_id == key[0], metrics.c.name == key[1])
    return [
        (row.id, row.name, bool(row.tagged), row.type == "value")
        for row in conn.execute(query.order_by(metrics.c.id))
    ]


def _days(start, end):
    day = start
    while day < end:
        yield day, min(day + DAY, end)
        day += DAY


def rebuild(store, start=None, end=None, metric=None, progress=None):
    """Rebuild the rollups of every metric (or the one keyed ``metric``, ``(tenant_id,
    name)``) over [start, end) (whole hours); {"metrics", "points", "from", "to"}."""
    now = utcnow()
    default_start, default_end = default_range(store.settings, now)
    start = floor_to(start or default_start, HOUR)
    end = ceil_to(end or default_end, HOUR)
    if start < default_start:
        raise RangeExpired(f"raw points before {default_start:%Y-%m-%d} are no longer kept")
    ids = run_in_transaction(store.write, _metric_ids, metric)
    isolation = store.sql.REBUILD_ISOLATION  # so the rows' locks cover the gaps
    engine = store.write.execution_options(isolation_level=isolation) if isolation else store.write
    points = 0
    for metric_id, name, tagged, sketched in ids:
        for day_start, day_end in _days(start, end):
            points += run_in_transaction(
                engine, rollups.rebuild, metric_id, day_start, day_end, tagged, sketched
            )
        if progress:
            progress(name)
    if metric is None:
        for tier in rollups.TABLES:
            run_in_transaction(store.write, _lower_watermark, tier, start)
    return {"metrics": len(ids), "points": points, "from": start, "to": end}


def _lower_watermark(conn, tier, start):
    for sketches in (False, True):
        current = rollups.complete_from(conn, sketches)[tier]
        if current is None or current > start:
            rollups.set_complete_from(conn, tier, start, sketches)


def check_range(settings, start=None, end=None):
    """The whole hours a check covers: [start, end) within the raw points kept."""
    default_start, default_end = default_range(settings, utcnow())
    return floor_to(max(start or default_start, default_start), HOUR), ceil_to(
        end or default_end, HOUR
    )


def metric_ids(store, metric=None):
    """(id, name, tagged, sketched) of every live metric, or of the one keyed ``metric``."""
    return run_in_transaction(store.write, _metric_ids, metric)


def check(store, start=None, end=None, metric=None):
    """[(metric name, tier, bucket, stored, expected)] where the rollups disagree with the
    raw points over [start, end) (of every metric, or the one keyed ``metric``)."""
    start, end = check_range(store.settings, start, end)
    found = []
    for metric_id, name, tagged, sketched in metric_ids(store, metric):
        for day_start, day_end in _days(start, end):
            for difference in run_in_transaction(
                store.write, rollups.differences, metric_id, day_start, day_end, tagged, sketched
            ):
                found.append((name, *difference))
    return found
