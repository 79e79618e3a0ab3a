"""Bucket boundaries in a time zone, and the earlier ranges of ``compare``.

Without a zone, buckets are UTC epoch multiples of the window, as in app/buckets.py. In a zone,
``1d`` buckets are local calendar days, each from the first instant of its date (a DST day is 23
or 25 hours; a date the clock skips has no bucket), and ``1h`` buckets are local clock hours: one
starts wherever the clock reads a whole hour or its UTC offset changes, so the hour repeated when
clocks go back is a bucket of its own, and zones offset by 30 or 45 minutes shift them. Shorter
windows keep their UTC instants. Every datetime here is naive UTC, as everywhere in the service;
the rules come from zoneinfo (the system's files, else the pinned ``tzdata`` package).
"""

import re
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from itertools import chain
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.core.timeutil import EPOCH, isoformat_z, to_epoch_seconds

MINUTE, HOUR, DAY = 60, 3600, 86400
COMPARE_DAYS = {"1d": 1, "1w": 7, "4w": 28}

# IANA names are relative paths of ASCII words; nothing else is handed to zoneinfo's file lookup.
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+-]{1,64}(?:/[A-Za-z0-9_+-]{1,64}){0,3}\Z")
# Files beside the zones that are no IANA name: "localtime" is whatever zone the server is in.
_NOT_ZONES = frozenset({"localtime", "posixrules"})
# Probes this far apart never straddle two offset changes: the closest in tzdata since 1970 are
# about 7 days apart (Brazil in 2000, Gaza's rules).
_PROBE_STRIDE = 3 * DAY
# Counting in a zone probes it every few days; past this span the UTC figure stands in (by then
# every window has over 18,000 buckets, and the two differ by about one per offset change).
_EXACT_COUNT_SPAN = 50 * 366 * DAY
_ONE_SECOND = timedelta(seconds=1)
_ONE_MICROSECOND = timedelta(microseconds=1)


def _zone_names():
    """The IANA names the pinned ``tzdata`` package lists: the same set on every machine."""
    text = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
    return tuple(sorted({line.strip() for line in text.splitlines() if line.strip()}))


# The names a query's ``tz`` takes (the document lists them): tzdata's, whatever the system has.
ZONE_NAMES = _zone_names()
_ZONE_NAME_SET = frozenset(ZONE_NAMES)


class UnknownZone(ValueError):
    """A time zone name that names no IANA zone."""


def zone(name):
    """An IANA zone name ("Europe/Berlin", "UTC") → its ZoneInfo; UnknownZone otherwise."""
    if isinstance(name, str) and _ZONE_NAME.match(name) and name not in _NOT_ZONES:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass  # OSError: a folder such as "America" is no zone
    raise _unknown(name)


def _unknown(name):
    return UnknownZone(
        f"unknown time zone {name!r:.80}: use an IANA name such as 'Europe/Berlin' or 'UTC'"
    )


def listed_zone(name):
    """A name of ZONE_NAMES → its ZoneInfo; UnknownZone for any other name."""
    if not isinstance(name, str) or name not in _ZONE_NAME_SET:
        raise _unknown(name)
    return zone(name)


def _moment(seconds):
    """Epoch seconds → naive UTC datetime."""
    return EPOCH + timedelta(seconds=seconds)


def _utc_seconds(aware):
    """An aware datetime → epoch seconds (floor)."""
    return to_epoch_seconds(aware.astimezone(UTC).replace(tzinfo=None))


def _offset(tz, seconds):
    """The zone's UTC offset, in seconds, at an instant given in epoch seconds."""
    return datetime.fromtimestamp(seconds, tz).utcoffset() // _ONE_SECOND


def _change_after(tz, before, after, offset):
    """The first second in (before, after] whose offset is no longer ``offset``."""
    while after - before > 1:
        middle = (before + after) // 2
        if _offset(tz, middle) == offset:
            before = middle
        else:
            after = middle
    return after


def _segments(tz, begin, finish):
    """The stretches of one UTC offset covering [begin, finish): (start, end, offset) each."""
    segments, start, offset, probe = [], begin, _offset(tz, begin), begin
    while probe < finish - 1:
        ahead = min(probe + _PROBE_STRIDE, finish - 1)
        if _offset(tz, ahead) != offset:
            change = _change_after(tz, probe, ahead, offset)
            segments.append((start, change, offset))
            start, offset = change, _offset(tz, change)
        probe = ahead
    segments.append((start, finish, offset))
    return segments


def _instant(tz, wall, fold=0):
    """The naive UTC instant at which the local clock reads ``wall`` (``fold=1``: the second time,
    after the clock went back); a reading the clock skipped gives the first instant after it."""
    moment = wall.replace(tzinfo=tz, fold=fold).astimezone(UTC).replace(tzinfo=None)
    if tz.fromutc(moment.replace(tzinfo=tz)).replace(tzinfo=None) == wall:
        return moment
    # In a gap, fold=1 maps to an instant before the change of offset and fold=0 to one after.
    before, after = (_utc_seconds(wall.replace(tzinfo=tz, fold=side)) for side in (1, 0))
    return _moment(_change_after(tz, before, after, _offset(tz, before)))


@dataclass(frozen=True)
class Bucketing:
    """The buckets of one window (seconds) in one zone (a ZoneInfo, or None for UTC epoch
    multiples). A bucket is [edge, next edge); a range start ≤ t < end is covered from the bucket
    holding ``start`` to the one holding the last instant before ``end``."""

    window_seconds: int
    tz: ZoneInfo | None = None

    def __post_init__(self):
        if self.tz is not None and not (HOUR % self.window_seconds == 0 or self.local):
            raise ValueError(f"a {self.window_seconds}s window has no meaning in a time zone")

    @property
    def local(self):
        """Whether the edges follow the zone's clock (1h, 1d) rather than UTC multiples."""
        return self.tz is not None and self.window_seconds in (HOUR, DAY)

    def edges(self, start, end):
        """The bucket edges b0 < b1 < … < bn for start ≤ t < end: b0 ≤ start opens the bucket
        holding ``start``, bn ≥ end closes the one holding the last instant before ``end``."""
        first, last = _bounds(start, end)
        if not self.local:
            width = self.window_seconds
            return [_moment(index * width) for index in range(first // width, last // width + 2)]
        opening, day = self._bucket_start(first)
        later = self._later_edges(opening, last + 2 * self.window_seconds + HOUR, day)
        edges = [opening]
        for seconds in chain.from_iterable(later):
            edges.append(seconds)
            if seconds > last:
                break
        return [_moment(seconds) for seconds in edges]

    def count(self, start, end):
        """How many buckets ``edges(start, end)`` delimits, without building them: arithmetic
        for UTC edges; in a zone a probe every few days (the UTC figure past 50 years)."""
        first, last = _bounds(start, end)
        width = self.window_seconds
        if not self.local or last - first > _EXACT_COUNT_SPAN:
            return last // width - first // width + 1
        opening, day = self._bucket_start(first)
        return 1 + sum(len(run) for run in self._later_edges(opening, last + 1, day))

    def label(self, edge):
        """A bucket's timestamp: local ISO 8601 with the offset in a zone, else ``…Z``."""
        if self.tz is None:
            return isoformat_z(edge)
        local = self.tz.fromutc(edge.replace(tzinfo=self.tz))
        return local.isoformat(timespec="microseconds" if edge.microsecond else "seconds")

    def base_slot_seconds(self, edges):
        """The coarsest grain every edge is a UTC multiple of: the window itself, else an hour
        (whole-hour offsets), else a minute (zones offset by 30 or 45 minutes), else a second.
        Rollups whose grain divides it answer these buckets exactly; a second means raw points."""
        seconds = [to_epoch_seconds(edge) for edge in edges]
        for grain in (self.window_seconds, HOUR, MINUTE):
            if self.window_seconds % grain == 0 and all(value % grain == 0 for value in seconds):
                return grain
        return 1

    def _bucket_start(self, seconds):
        """(start of the bucket holding ``seconds``, its local date in days since the epoch)."""
        if self.window_seconds == DAY:
            day = self._day_of(seconds)
            return self._day_start(day), day
        segments = _segments(self.tz, seconds - HOUR, seconds + 1)
        start, _, offset = segments[-1]
        whole_hour = seconds - (seconds + offset) % HOUR
        # Since a change of offset within the hour, the bucket starts at that change.
        return (max(whole_hour, start) if len(segments) > 1 else whole_hour), None

    def _day_start(self, day):
        """The first instant (epoch seconds) of a local date given in days since the epoch."""
        return to_epoch_seconds(_instant(self.tz, EPOCH + timedelta(days=day)))

    def _day_of(self, seconds):
        """The local date (days since the epoch) whose bucket holds an instant."""
        day = (seconds + _offset(self.tz, seconds)) // DAY
        # When the clock goes back across midnight, the repeated hour stays in the day begun.
        return day + 1 if self._day_start(day + 1) <= seconds else day

    def _later_edges(self, opening, finish, day):
        """Ranges of the edges after ``opening`` and before ``finish`` (epoch seconds). ``day``:
        the local date of the bucket ``opening`` starts, for 1d, where no date starts twice."""
        width, runs = self.window_seconds, []
        for index, (start, end, offset) in enumerate(_segments(self.tz, opening + 1, finish)):
            first = start + (-(start + offset)) % width
            jumped_ahead = width == HOUR or (start + offset) // DAY > day
            if index and first != start and jumped_ahead:
                # The offset changed here: a new hour, or a date whose midnight was skipped.
                runs.append(range(start, start + 1))
                day = (start + offset) // DAY
            if width == DAY:
                first += max(0, day + 1 - (first + offset) // DAY) * DAY
            runs.append(range(first, end, width))
            if width == DAY and runs[-1]:
                day = (runs[-1][-1] + offset) // DAY
        return runs


def _bounds(start, end):
    """The epoch seconds of ``start`` and of the last instant before ``end``."""
    if not start < end:
        raise ValueError("start must be before end")
    return to_epoch_seconds(start), to_epoch_seconds(end - _ONE_MICROSECOND)


def bucket_indexes(edges, slot_starts):
    """For each base-slot start (naive UTC), the index i of the bucket [edges[i], edges[i + 1])
    that holds it, or None outside the edges. Slots of ``base_slot_seconds`` never straddle an
    edge, so a slot's partial aggregate merges whole into its bucket."""
    last = len(edges) - 1
    indexes = []
    for slot in slot_starts:
        index = bisect_right(edges, slot) - 1
        indexes.append(index if 0 <= index < last else None)
    return indexes


def compare_days(compare):
    """A ``compare`` value ("1d", "1w", "4w") → how many days back."""
    try:
        return COMPARE_DAYS[compare]
    except (KeyError, TypeError):
        raise ValueError(f"compare must be one of {', '.join(COMPARE_DAYS)}") from None


def shift_back(moment, compare, tz=None):
    """``moment`` moved back by ``compare``: whole multiples of 24 hours without a zone; in one,
    whole local calendar days (the same wall-clock reading, so a midnight stays a midnight and
    across DST the UTC distance is a day ± an hour). A reading the clock skipped that day gives
    the first instant after the skip; one read twice keeps ``moment``'s first or second time."""
    days = compare_days(compare)
    if tz is None:
        return moment - timedelta(days=days)
    local = tz.fromutc(moment.replace(tzinfo=tz))
    return _instant(tz, local.replace(tzinfo=None) - timedelta(days=days), local.fold)


def compare_range(start, end, compare, tz=None):
    """The earlier range ``compare`` sets beside start ≤ t < end: both ends shifted back."""
    return shift_back(start, compare, tz), shift_back(end, compare, tz)
