"""Which stored data answers which part of a query: hourly rollups for whole hours (windows of
an hour or more), minute rollups for whole minutes, raw points for the rest — each only where
it is complete (its watermark) and kept (its retention).

A query reaching back past the raw points' retention is answered from the rollups, its range
widened to whole minutes (or hours) there, and says so with its ``resolution``; a window finer
than any tier still holding that range is RESOLUTION_UNAVAILABLE, never a silently wrong figure.
"""

from dataclasses import dataclass, field
from datetime import datetime

from app.config import raw_keep_days
from app.core.constants import HOUR, MINUTE, TIER_SECONDS
from app.core.timeutil import ceil_to, floor_to, horizon

RAW = "raw"
GRAIN = TIER_SECONDS


class ResolutionUnavailable(Exception):
    """No data that can answer the query exactly is kept."""

    def __init__(self, message, earliest=None):
        super().__init__(message)
        self.earliest = earliest


@dataclass(frozen=True)
class Coverage:
    """From when each source can be used: raw points are kept from ``raw``; a rollup tier is
    complete and kept from its time (None: nowhere)."""

    raw: datetime
    minute: datetime | None
    hour: datetime | None


@dataclass
class Plan:
    """The intervals each source answers, the (possibly widened) range and its resolution."""

    start: datetime
    end: datetime
    resolution: str
    raw: list = field(default_factory=list)
    minute: list = field(default_factory=list)
    hour: list = field(default_factory=list)


def coverage(watermarks, now, settings):
    """The Coverage at ``now``: raw points from their retention's horizon; each rollup tier from
    its watermark or its own retention's horizon, whichever is later."""

    def tier(name, days):
        complete_from = watermarks.get(name)
        return None if complete_from is None else max(complete_from, horizon(now, days))

    # METRICS_RETENTION_DAYS=0 keeps no raw point at all: every range is whole minutes.
    keeps_raw = settings["METRICS_RETENTION_DAYS"] > 0
    raw = horizon(now, raw_keep_days(settings)) if keeps_raw else datetime.max
    return Coverage(
        raw,
        tier(MINUTE, settings["METRICS_ROLLUP_MINUTE_DAYS"]),
        tier(HOUR, settings["METRICS_ROLLUP_HOUR_DAYS"]),
    )


def _subtract(interval, holes):
    """``interval`` minus the ``holes`` (sorted, disjoint): the pieces left."""
    start, end = interval
    pieces = []
    for hole_start, hole_end in holes:
        if hole_end <= start or hole_start >= end:
            continue
        if hole_start > start:
            pieces.append((start, hole_start))
        start = max(start, hole_end)
    if start < end:
        pieces.append((start, end))
    return pieces


def _widen(start, end, window_seconds, coverage):
    """The range and resolution a query can be answered at."""
    if start >= coverage.raw:
        return start, end, RAW
    for tier in (MINUTE, HOUR):
        available = getattr(coverage, tier)
        if available is None or start < available:
            continue
        if window_seconds < GRAIN[tier]:
            kept = (
                "No raw points are kept"
                if coverage.raw == datetime.max
                else (f"Before {coverage.raw:%Y-%m-%d} no raw points are kept")
            )
            raise ResolutionUnavailable(
                f"{kept} and the {tier} rollups answer windows of {GRAIN[tier] // 60} minutes "
                "or more",
                earliest=None if coverage.raw == datetime.max else coverage.raw,
            )
        wide_start = floor_to(start, GRAIN[tier])
        wide_end = end if end >= coverage.raw else ceil_to(end, GRAIN[tier])
        return wide_start, wide_end, tier
    earliest = min(t for t in (coverage.raw, coverage.minute, coverage.hour) if t is not None)
    raise ResolutionUnavailable(
        f"No data is kept before {earliest:%Y-%m-%dT%H:%M:%SZ}", earliest=earliest
    )


def plan(start, end, window_seconds, coverage, use_rollups=True):
    """The Plan for [start, end) in buckets of ``window_seconds``."""
    if not use_rollups:
        coverage = Coverage(coverage.raw, None, None)
    start, end, resolution = _widen(start, end, window_seconds, coverage)
    result = Plan(start, end, resolution)
    if coverage.hour is not None and window_seconds >= 3600:
        first, last = max(ceil_to(start, 3600), coverage.hour), floor_to(end, 3600)
        if first < last:
            result.hour = [(first, last)]
    if coverage.minute is not None:
        first, last = max(ceil_to(start, 60), coverage.minute), floor_to(end, 60)
        if first < last:
            result.minute = _subtract((first, last), result.hour)
    result.raw = _subtract((start, end), sorted(result.hour + result.minute))
    if any(piece_start < coverage.raw for piece_start, _ in result.raw):
        raise ResolutionUnavailable(
            f"The raw points before {coverage.raw:%Y-%m-%d} are no longer kept and no rollup "
            "covers that part of the range",
            earliest=coverage.raw,
        )
    return result
