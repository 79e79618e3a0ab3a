"""Bucket arithmetic: aligned to UTC epoch multiples of the window, over half-open ranges."""

from datetime import timedelta

from app.core.timeutil import EPOCH, isoformat_z, to_epoch_seconds

_EMPTY = {"sum": 0, "count": 0, "avg": None, "min": None, "max": None}


def bucket_range(start, end, window_seconds):
    """(first, last) bucket indexes for start ≤ t < end: the one holding ``start`` to the one
    holding the last instant before ``end``."""
    first = to_epoch_seconds(start) // window_seconds
    last = to_epoch_seconds(end - timedelta(microseconds=1)) // window_seconds
    return first, last


def series(values, first, last, window_seconds, operation, fill):
    """Every bucket from first to last in order as {timestamp, value}; empty ones filled
    (0 for sum/count, null otherwise) or, with fill="none", left out."""

    def label(index):
        return isoformat_z(EPOCH + timedelta(seconds=index * window_seconds))

    return _filled(values, range(first, last + 1), label, operation, fill)


def labelled_series(values, labels, operation, fill):
    """Like ``series`` for buckets given by position: ``labels`` are their timestamps in
    order, ``values`` {position: value}."""
    return _filled(values, range(len(labels)), labels.__getitem__, operation, fill)


def _filled(values, keys, label, operation, fill):
    """{timestamp: label(key), value} for each of ``keys`` in order: its value, or for an
    empty bucket the operation's empty value (a percentile of nothing is null too), or
    nothing with fill="none"."""
    points = []
    for key in keys:
        if key in values:
            value = values[key]
        elif fill == "none":
            continue
        else:
            value = _EMPTY.get(operation)
        points.append({"timestamp": label(key), "value": value})
    return points
