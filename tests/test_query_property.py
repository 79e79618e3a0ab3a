"""Every operation × window equals a plain recomputation from the raw points (seeded random).

Points go in through the API (batch), at random times, on bucket edges and on the range ends,
with negative, fractional, large and tiny values; ranges start and end on edges, on points and
anywhere. count/min/max must match exactly, sum/avg to 1e-9 relative.
"""

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from app.core.timeutil import EPOCH, isoformat_z

pytestmark = pytest.mark.points

WINDOWS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400}
OPERATIONS = ("sum", "count", "avg", "min", "max")
SEEDS = range(4)


def epoch(moment):
    return (moment - EPOCH) // timedelta(seconds=1)


def random_value(rng):
    kind = rng.random()
    if kind < 0.5:
        return round(rng.uniform(-1000, 1000), rng.randint(0, 6))
    if kind < 0.7:
        return rng.randint(-50, 50)
    if kind < 0.8:
        return rng.choice([0.1, 0.2, -0.3, 1e-7, 2.5e-3])
    if kind < 0.9:
        return rng.uniform(-1e12, 1e12)
    return rng.choice([1e15, -1e15, 123456789.123456])


def random_times(rng, now, count):
    """Times in the last ~5 days: anywhere, on a bucket edge of some window, or 1 µs before."""
    oldest = now - timedelta(days=5)
    span = int((now - oldest).total_seconds())
    times = []
    for _ in range(count):
        moment = oldest + timedelta(
            seconds=rng.randint(0, span), microseconds=rng.randint(0, 999999)
        )
        if rng.random() < 0.4:
            width = rng.choice(list(WINDOWS.values()))
            moment = EPOCH + timedelta(seconds=epoch(moment) // width * width)
            moment = max(moment, oldest + timedelta(hours=1))
            if rng.random() < 0.5:  # the last microsecond of the bucket before the edge
                moment -= timedelta(microseconds=1)
        times.append(moment)
    return times


def expected_series(points, start, end, width, operation):
    first = epoch(start) // width
    last = epoch(end - timedelta(microseconds=1)) // width
    buckets = {b: [] for b in range(first, last + 1)}
    for moment, value in points:
        if start <= moment < end:
            buckets[epoch(moment) // width].append(value)
    result = []
    for index, values in buckets.items():
        if not values:
            value = 0 if operation in ("sum", "count") else None
        else:
            value = {
                "sum": lambda v: math.fsum(v),
                "count": len,
                "avg": lambda v: math.fsum(v) / len(v),
                "min": min,
                "max": max,
            }[operation](values)
        label = isoformat_z(EPOCH + timedelta(seconds=index * width))
        result.append((label, value))
    return result


def assert_same(actual, expected, operation, context):
    assert [t for t, _ in actual] == [t for t, _ in expected], context
    for (label, got), (_, want) in zip(actual, expected, strict=True):
        if want is None or operation in ("count", "min", "max"):
            assert got == want, (context, label)
        else:
            assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9), (context, label, got, want)


def random_range(rng, times, now):
    """A range whose ends are on a point, on a bucket edge, or anywhere."""
    ends = []
    for _ in range(2):
        choice = rng.random()
        if choice < 0.35:
            ends.append(rng.choice(times))
        elif choice < 0.7:
            width = rng.choice(list(WINDOWS.values()))
            some = rng.choice(times)
            ends.append(EPOCH + timedelta(seconds=epoch(some) // width * width))
        else:
            ends.append(now - timedelta(seconds=rng.uniform(0, 5.2 * 86400)))
    start, end = sorted(ends)
    if start == end:
        end = start + timedelta(seconds=rng.randint(1, 7200))
    return start, end


@pytest.mark.parametrize("seed", SEEDS)
def test_aggregates_equal_a_recomputation_from_raw_points(client, auth, seed):
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(tzinfo=None)
    raw = {}
    for kind in ("counter", "value"):
        name = f"prop.{kind}.{seed}"
        times = random_times(rng, now, rng.randint(150, 400))
        raw[name] = [(t, float(random_value(rng))) for t in times]
        items = [
            {"name": name, "type": kind, "value": v, "recorded_at": isoformat_z(t)}
            for t, v in raw[name]
        ]
        response = client.post("/api/metrics/batch", json={"metrics": items}, headers=auth)
        assert response.get_json()["accepted"] == len(items), response.get_json()
    all_times = [t for points in raw.values() for t, _ in points]
    for window, width in WINDOWS.items():
        start, end = random_range(rng, all_times, now)
        if (epoch(end) - epoch(start)) // width > 9000:
            start = end - timedelta(seconds=width * 9000)
        for operation in OPERATIONS:
            query = {
                "name": ",".join(raw),
                "operation": operation,
                "window": window,
                "start": isoformat_z(start),
                "end": isoformat_z(end),
            }
            response = client.get("/api/metrics/aggregate", query_string=query, headers=auth)
            assert response.status_code == 200, response.get_json()
            for name, points in raw.items():
                actual = [(p["timestamp"], p["value"]) for p in response.get_json()["data"][name]]
                expected = expected_series(points, start, end, width, operation)
                assert_same(actual, expected, operation, (seed, name, window, operation))
