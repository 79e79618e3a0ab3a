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
    points = []
    for index in range(first, last + 1):
        if index in values:
            value = values[index]
        elif fill == "none":
            continue
        else:
            value = _EMPTY.get(operation)  # a percentile of nothing is null too
        label = EPOCH + timedelta(seconds=index * window_seconds)
        points.append({"timestamp": isoformat_z(label), "value": value})
    return points


def labelled_series(values, labels, operation, fill):
    """Like ``series`` for buckets given by position: ``labels`` are their timestamps in
    order, ``values`` {position: value}."""
    points = []
    for index, label in enumerate(labels):
        if index in values:
            value = values[index]
        elif fill == "none":
            continue
        else:
            value = _EMPTY.get(operation)  # a percentile of nothing is null too
        points.append({"timestamp": label, "value": value})
    return points
