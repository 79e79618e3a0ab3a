"""Percentile sketch speeds, in process: the best of 5 runs of each, per call.

    .venv/bin/python scripts/bench_sketch.py

A "200-key sketch" holds 200 keys drawn from a window of 300 adjacent buckets (values spread
over a factor of ~400, like a latency) with counts 1–50, as an hourly rollup row might.
"""

import random
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.core.sketch import (  # noqa: E402
    MAX_KEY,
    Sketch,
    key_of,
    merge_all,
    merge_encoded,
    merged_quantile,
)


def sketch_of_200_keys(rng):
    """A sketch with 200 keys in a window of 300 buckets, counts 1–50."""
    start = rng.randrange(1, MAX_KEY - 300)
    keys = rng.sample(range(start, start + 300), 200)
    return Sketch({key: rng.randrange(1, 51) for key in keys})


def best(label, call, number):
    """Print the best per-call time of 5 runs of ``number`` calls."""
    seconds = min(timeit.repeat(call, number=number, repeat=5)) / number
    print(f"{label:48s} {seconds * 1e6:10.1f} µs")


def main():
    rng = random.Random(26)
    values = [rng.lognormvariate(3, 1.5) * rng.choice((1, 1, 1, -1)) for _ in range(1000)]
    one = sketch_of_200_keys(rng)
    blob, other = one.encode(), sketch_of_200_keys(rng).encode()
    hours = [sketch_of_200_keys(rng).encode() for _ in range(720)]
    print(f"a 200-key sketch encodes to {len(blob)} bytes")
    best("key_of × 1,000 values", lambda: [key_of(v) for v in values], 200)
    best("Sketch.of(1,000 values)", lambda: Sketch.of(values), 200)
    best("encode, 200 keys", one.encode, 2000)
    best("decode, 200 keys", lambda: Sketch.decode(blob), 2000)
    best("quantile of a decoded 200-key sketch", lambda: one.quantile(0.99), 2000)
    best("decode + quantile, 200 keys", lambda: Sketch.decode(blob).quantile(0.99), 2000)
    best("merged_quantile of one 200-key sketch", lambda: merged_quantile([blob], 0.99), 2000)
    best("merge_encoded, 200 + 200 keys", lambda: merge_encoded(blob, other), 1000)
    best(
        "decode + merge + encode, 200 + 200 keys",
        lambda: _merged(Sketch.decode(blob), Sketch.decode(other)).encode(),
        1000,
    )
    best("merge_all of 720 × 200 keys, then p99", lambda: merge_all(hours).quantile(0.99), 10)
    best("merged_quantile of 720 × 200 keys", lambda: merged_quantile(hours, 0.99), 10)
    best("decode + merge × 720 × 200 keys, then p99", lambda: _merge_one_by_one(hours), 10)


def _merged(a, b):
    """``a`` with ``b`` merged into it."""
    a.merge(b)
    return a


def _merge_one_by_one(blobs):
    """p99 of blobs merged by decoding each and merging it into the first."""
    total = Sketch()
    for blob in blobs:
        total.merge(Sketch.decode(blob))
    return total.quantile(0.99)


if __name__ == "__main__":
    main()
