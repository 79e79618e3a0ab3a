"""UTC time parsing and formatting. Inside the service every datetime is naive UTC."""

import math
import re
from datetime import UTC, datetime, time, timedelta

from app.core.constants import DECIMAL_PATTERN

EPOCH = datetime(1970, 1, 1)
_NUMBER_RE = re.compile(DECIMAL_PATTERN)
_SPACED_OFFSET_RE = re.compile(
    r"^(\d{4}-?\d{2}-?\d{2}[Tt ]\d{2}(?::?\d{2}(?::?\d{2}(?:\.\d+)?)?)?) (\d{2}(?::?\d{2})?)$",
    re.ASCII,
)


def utcnow():
    """The current time as a naive UTC datetime."""
    return datetime.now(UTC).replace(tzinfo=None)


def from_epoch(seconds):
    """Unix seconds (int or float) → naive UTC datetime, to the microsecond.

    Times beyond what a datetime holds clamp to its ends, so range checks refuse them as such.
    """
    if isinstance(seconds, float) and not math.isfinite(seconds):
        raise ValueError("not a finite number")
    try:
        return EPOCH + timedelta(microseconds=round(seconds * 1_000_000))
    except OverflowError:
        return datetime.max if seconds > 0 else datetime.min


def parse_decimal(text):
    """Decimal text ("-1.5e2", "42") → int or float; None when it is not plain decimal
    (Python's own float() would also take "nan", "inf" and "1_000")."""
    text = text.strip()
    if not _NUMBER_RE.match(text):
        return None
    return float(text) if any(c in text for c in ".eE") else json_int(text)


def json_int(text):
    """An integer literal → int; past Python's 4300-digit int limit, a float (inf), which the
    range checks then refuse like any other out-of-range number."""
    return int(text) if len(text) < 4300 else float(text)


# Epoch numbers this large are milliseconds, everywhere a time is read (ingest, queries,
# StatHat's t): 1e11 seconds is the year 5138, 1e11 milliseconds is 1973.
MILLISECONDS_FROM = 1e11


def epoch_seconds(number):
    """An epoch number as seconds: milliseconds when its magnitude is ≥ 1e11. Integers too
    large for a float divide as integers (they are far out of range either way)."""
    if abs(number) < MILLISECONDS_FROM:
        return number
    if isinstance(number, int) and abs(number) > 2**53:
        return number // 1000
    return number / 1000


def parse_timestamp(raw):
    """ISO 8601 text (offsets honoured, naive = UTC) or Unix seconds → naive UTC datetime;
    an epoch number of magnitude ≥ 1e11 is milliseconds.

    Raises ``ValueError`` with a short reason for anything else.
    """
    if isinstance(raw, bool):
        raise ValueError("must be an ISO 8601 string or Unix seconds")
    if isinstance(raw, int | float):
        return from_epoch(epoch_seconds(raw))
    if not isinstance(raw, str) or not raw.strip() or not raw.isascii():
        raise ValueError("must be an ISO 8601 string or Unix seconds")
    text = raw.strip()
    number = parse_decimal(text)
    if number is not None:
        return from_epoch(epoch_seconds(number))
    # A "+01:00" offset sent unencoded in a query string or form arrives as " 01:00".
    text = _SPACED_OFFSET_RE.sub(r"\1+\2", text)
    if text[-1] == "z":
        text = text[:-1] + "Z"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{raw!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            return datetime.max if parsed.year > 1 else datetime.min
    return parsed


# The instants a query may name: from the epoch to the start of the year 9999, so every bucket
# label and widened range stays inside what a datetime holds.
EARLIEST, LATEST = EPOCH, datetime(9999, 1, 1)
# LATEST as the largest epoch number a query may give (milliseconds, by magnitude).
LATEST_EPOCH_MILLISECONDS = (LATEST - EPOCH) // timedelta(milliseconds=1)


def representable(moment):
    """Whether a query may name ``moment`` (between EARLIEST and LATEST)."""
    return EARLIEST <= moment <= LATEST


def horizon(now, days):
    """The first instant a retention of ``days`` keeps: today's start (UTC) minus ``days``."""
    return datetime.combine(now.date(), time()) - timedelta(days=days)


def isoformat_z(moment):
    """Naive UTC datetime → ``2026-02-15T10:00:00Z`` (microseconds only when present)."""
    return moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds") + "Z"


def to_epoch_seconds(moment):
    """Naive UTC datetime → whole Unix seconds (floor)."""
    return (moment - EPOCH) // timedelta(seconds=1)


def floor_to(moment, seconds):
    """``moment`` down to a multiple of ``seconds`` since the epoch."""
    whole = (moment - EPOCH) // timedelta(seconds=1)
    return EPOCH + timedelta(seconds=whole - whole % seconds)


def ceil_to(moment, seconds):
    """``moment`` up to a multiple of ``seconds`` since the epoch."""
    floored = floor_to(moment, seconds)
    return floored if floored == moment else floored + timedelta(seconds=seconds)
