"""Percentiles in the query benchmark (``make bench-query BENCH_ARGS="--only percentiles"``):
50 value metrics with 30 days of hourly rollup rows, each made by the writer's own code
(``Partial.of``) from 200 heavy-tailed values — so a row's sketch holds what an hour of a
latency metric gives it (~100–200 keys) — loaded directly into their own MariaDB/MySQL
database (``gf_bench_pct``). Then, through the HTTP API (gunicorn, one keep-alive client), a
random metric per run, interleaved in random order: the hourly p99 and avg over 30 days, and
the daily p99 and avg (24 sketches merged a bucket). The range is whole hours, so both read
the hourly rows alone. Target: the hourly p99's p95 <= 2x the hourly avg's.
"""

import random
import statistics
import time
from datetime import timedelta
from urllib.parse import urlencode

from app.core.timeutil import floor_to
from app.db.rollups import Partial
from app.db.schema import metric_rollups_hour, metrics
from scripts.tags_query_bench import iso_range, percentile, served

DATABASE = "gf_bench_pct"
METRICS = 50
DAYS = 30
HOURS = DAYS * 24
VALUES_AN_HOUR = 200
TARGET = 2.0  # hourly p99 p95 / hourly avg p95
QUERIES = {  # label: (operation, window)
    "hourly avg, 30 days": ("avg", "1h"),
    "hourly p99, 30 days": ("p99", "1h"),
    "daily avg, 30 days": ("avg", "1d"),
    "daily p99, 30 days": ("p99", "1d"),
}


def load(engine, end):
    """The metrics and their hourly rows (with sketches) over the DAYS before ``end``;
    returns (rows, keys a sketch on average, seconds)."""
    rng = random.Random(99)
    began = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(
            metrics.insert(),
            [
                {
                    "name": f"bench.pct.{i:02d}",
                    "type": "value",
                    "created_at": end,
                    "updated_at": end,
                }
                for i in range(METRICS)
            ],  # fmt: skip
        )
        ids = sorted(conn.scalars(metrics.select().with_only_columns(metrics.c.id)))
    rows, keys = 0, 0
    first = end - timedelta(hours=HOURS)
    for metric_id in ids:
        batch = []
        for hour in range(HOURS):
            values = [round(rng.lognormvariate(4, 1.2), 3) for _ in range(VALUES_AN_HOUR)]
            partial = Partial.of(values, exact_all=False, sketched=True)
            keys += len(partial.sketch.counts)
            batch.append({"metric_id": metric_id, "bucket": first + timedelta(hours=hour),
                          "n": partial.n, "total": partial.total, "residual": partial.residual,
                          "vmin": partial.vmin, "vmax": partial.vmax,
                          "sketch": partial.sketch.encode()})  # fmt: skip
        with engine.begin() as conn:
            conn.execute(metric_rollups_hour.insert(), batch)
        rows += len(batch)
    return rows, keys / rows, time.perf_counter() - began


def measure(get, names, start, end, iterations, warmup, seed=3):
    """{label: [ms…]}: every query once an iteration on a random metric, in random order."""
    rng = random.Random(seed)
    results = {label: [] for label in QUERIES}
    for iteration in range(warmup + iterations):
        labels = list(QUERIES)
        rng.shuffle(labels)
        for label in labels:
            operation, window = QUERIES[label]
            parameters = {"operation": operation, "window": window, "start": start, "end": end}
            elapsed = get(f"/api/metrics/{rng.choice(names)}?{urlencode(parameters)}")
            if iteration >= warmup:
                results[label].append(elapsed)
    return results


def report(results, iterations):
    """p50 and p95 per query, each p99's ratio to the avg of its window, the target."""
    print(
        f"\npercentiles: {iterations} runs a query, interleaved in random order, one keep-alive "
        f"client; {METRICS} metrics x {HOURS} hourly rows of {VALUES_AN_HOUR} values; ms"
    )
    header = f"{'query':<22}{'p50':>9}{'p95':>9}{'p95 / avg p95':>15}  target"
    print(header)
    print("-" * len(header))
    for label, samples in results.items():
        p50, p95 = statistics.median(samples), percentile(samples, 0.95)
        ratio, target = "", ""
        if "p99" in label:
            base = percentile(results[label.replace("p99", "avg")], 0.95)
            ratio = f"{p95 / base:>14.2f}x"
            if label.startswith("hourly"):
                target = f"<= {TARGET}x {'met' if p95 / base <= TARGET else 'MISSED'}"
        print(f"{label:<22}{p50:>9.2f}{p95:>9.2f}{ratio:>15}  {target}".rstrip())


def run(args, end):
    """Load (unless --reuse), serve, measure, report; drops the database unless --keep."""
    end = floor_to(end, 3600)

    def loader(engine):
        rows, keys, seconds = load(engine, end)
        print(f"percentiles: loaded {rows:,} hourly rows ({keys:.0f} sketch keys a row on "
              f"average) in {seconds:.1f} s")  # fmt: skip

    def timed(get):
        names = [f"bench.pct.{i:02d}" for i in range(METRICS)]
        return measure(get, names, *iso_range(end, DAYS), args.iterations, args.warmup)

    results = served(args, DATABASE, "bench-percentiles", loader, timed)
    report(results, args.iterations)
    return results
