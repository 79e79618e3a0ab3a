"""The ClickHouse points engine in the query benchmark (``make bench-query BENCH_ARGS="--only
clickhouse"``): the same points in both engines — 100 value metrics over 30 days, 12 points
an hour at scattered times — made inside ClickHouse with one ``INSERT … SELECT`` from
``numbers()`` through the store's client (its views build the minute and hour tiers), read
back and written to MariaDB with their minute and hour rollups (with their percentile
sketches), made by the writer's own ``Partial.of``. Relational data on MariaDB for both
(a database each). Then, through HTTP (one gunicorn worker each: ClickHouse's in-process
engine serves one process; one keep-alive client a server), interleaved in random order, a
random metric a run: the 30-day hourly sum, avg and p99 on each engine. Target: ClickHouse's
hourly sum p95 <= MariaDB's.
"""

import random
import statistics
import tempfile
import time
from datetime import timedelta
from itertools import groupby
from urllib.parse import urlencode

from sqlalchemy import insert, select, text

from app.config import load
from app.core.timeutil import floor_to
from app.db import Store
from app.db.clickhouse.client import naive
from app.db.rollups import Partial
from app.db.schema import metric_points, metric_rollups_hour, metric_rollups_minute, metrics
from scripts.tags_query_bench import http_getter, iso_range, percentile
from tests.harness import NO_RECYCLING, Gunicorn, drop_database, new_key, recreate_database

DATABASES = {"ClickHouse": "gf_bench_ch", "MariaDB": "gf_bench_ch_mariadb"}
METRICS = 100
DAYS = 30
HOURS = DAYS * 24
POINTS_AN_HOUR = 12
CHUNK_ROWS = 20_000
QUERIES = {"hourly sum, 30 days": "sum", "hourly avg, 30 days": "avg", "hourly p99, 30 days": "p99"}
TARGET_QUERY = "hourly sum, 30 days"

# Point k of metric m at a scattered time within its slot (3,600 s / POINTS_AN_HOUR wide) and
# a value of three decimals in [0, 1000): deterministic, so a run can be repeated.
_GENERATE = (
    "INSERT INTO points (metric_id, series_id, recorded_at, value, batch) "
    "SELECT {first:UInt64} + intDiv(number, {per_metric:UInt64}), 0, "
    "addMicroseconds(toDateTime64({start:String}, 6, 'UTC'), "
    "  (number % {per_metric:UInt64}) * {slot:UInt64} + cityHash64(number, 1) % {slot:UInt64}), "
    "(cityHash64(number, 2) % 1000000) / 1000, 'bench' "
    "FROM numbers({rows:UInt64})"
)
_READ_BACK = "SELECT metric_id, recorded_at, value FROM points ORDER BY metric_id, recorded_at"


def open_store(database, server_url, points_url=None):
    """A Store of a fresh, migrated relational database (and points engine, if any)."""
    recreate_database(server_url, database)
    settings = {"DATABASE_URL": f"{server_url}/{database}"}
    store = Store(load({**settings, **({"POINTS_URL": points_url} if points_url else {})}))
    store.migrate()
    return store


def add_metrics(store, now):
    """The value metrics; returns their ids in name order."""
    rows = [{"name": f"bench.ch.{i:03d}", "type": "value", "created_at": now, "updated_at": now}
            for i in range(METRICS)]  # fmt: skip
    with store.write.begin() as conn:
        conn.execute(insert(metrics), rows)
        return list(conn.scalars(select(metrics.c.id).order_by(metrics.c.name)))


def load_clickhouse(store, end):
    """The points, made inside ClickHouse; returns them (metric index, time, value) in order."""
    ids = add_metrics(store, end)
    if ids != list(range(ids[0], ids[0] + METRICS)):
        raise RuntimeError(f"metric ids not consecutive: {ids[:3]}…")
    client = store.points.clients.get()
    per_metric = HOURS * POINTS_AN_HOUR
    start = f"{end - timedelta(hours=HOURS):%Y-%m-%d %H:%M:%S}"
    slot = 3_600_000_000 // POINTS_AN_HOUR
    parameters = {"first": ids[0], "per_metric": per_metric, "start": start, "slot": slot,
                  "rows": per_metric * METRICS}  # fmt: skip
    client.command(_GENERATE, parameters=parameters)
    return [(metric_id - ids[0], naive(at), value)
            for metric_id, at, value in client.query(_READ_BACK).result_rows]  # fmt: skip


def insert_chunks(store, table, rows):
    """Insert ``rows`` into ``table``, a transaction a chunk."""
    for lo in range(0, len(rows), CHUNK_ROWS):
        with store.write.begin() as conn:
            conn.execute(insert(table), rows[lo : lo + CHUNK_ROWS])


def load_mariadb(store, points, end):
    """The same points and their minute and hour rollups (the writer's ``Partial.of``, with
    sketches), every tier complete."""
    ids = add_metrics(store, end)
    rows = [{"metric_id": ids[index], "series_id": 0, "recorded_at": at, "value": value}
            for index, at, value in points]  # fmt: skip
    insert_chunks(store, metric_points, rows)
    for table, width in ((metric_rollups_minute, 60), (metric_rollups_hour, 3600)):
        buckets = groupby(
            points, key=lambda point, width=width: (point[0], floor_to(point[1], width))
        )
        rows = []
        for (index, bucket), group in buckets:
            partial = Partial.of([value for _, _, value in group], exact_all=False, sketched=True)
            rows.append({"metric_id": ids[index], "bucket": bucket, "n": partial.n,
                         "total": partial.total, "residual": partial.residual,
                         "vmin": partial.vmin, "vmax": partial.vmax,
                         "sketch": partial.sketch.encode()})  # fmt: skip
        insert_chunks(store, table, rows)
    with store.write.begin() as conn:
        conn.execute(text("UPDATE rollup_state SET complete_from = '1970-01-01'"))


def load_both(server_url, points_url, end):
    """Fill both engines (the ClickHouse store closed again, so a server can open its
    directory); returns how many points and the seconds each load took."""
    began = time.perf_counter()
    store = open_store(DATABASES["ClickHouse"], server_url, points_url)
    try:
        points = load_clickhouse(store, end)
    finally:
        store.dispose()
    middle = time.perf_counter()
    store = open_store(DATABASES["MariaDB"], server_url)
    try:
        load_mariadb(store, points, end)
    finally:
        store.dispose()
    return len(points), middle - began, time.perf_counter() - middle


def check_same_answers(getters, start, end):
    """Each query of the first metric answers the same on both engines (the same points)."""
    for label, operation in QUERIES.items():
        parameters = {"operation": operation, "window": "1h", "start": start, "end": end}
        answers = []
        for get in getters.values():
            get(f"/api/metrics/bench.ch.000?{urlencode(parameters)}", answers)
        if answers[0] != answers[1]:
            raise RuntimeError(f"{label}: the engines differ: {str(answers)[:600]}")


def measure(getters, start, end, iterations, warmup, seed=5):
    """{(engine, label): [ms…]}: every query on every engine once an iteration, in random
    order, each on a random metric."""
    rng = random.Random(seed)
    runs = [(engine, label) for engine in getters for label in QUERIES]
    results = {run: [] for run in runs}
    for iteration in range(warmup + iterations):
        rng.shuffle(runs)
        for engine, label in runs:
            name = f"bench.ch.{rng.randrange(METRICS):03d}"
            parameters = {"operation": QUERIES[label], "window": "1h", "start": start, "end": end}
            elapsed = getters[engine](f"/api/metrics/{name}?{urlencode(parameters)}")
            if iteration >= warmup:
                results[(engine, label)].append(elapsed)
    return results


def report(results, iterations):
    """p50 and p95 per engine and query, ClickHouse's p95 over MariaDB's, the target."""
    print(
        f"\nclickhouse: {iterations} runs a query and engine, interleaved in random order, one "
        f"keep-alive client a server; {METRICS} metrics x {HOURS} hours x {POINTS_AN_HOUR} "
        "points; ms"
    )
    header = f"{'query':<22}{'engine':>12}{'p50':>9}{'p95':>9}{'p95 / MariaDB':>15}  target"
    print(header)
    print("-" * len(header))
    for label in QUERIES:
        base = percentile(results[("MariaDB", label)], 0.95)
        for engine in DATABASES:
            samples = results[(engine, label)]
            p50, p95 = statistics.median(samples), percentile(samples, 0.95)
            ratio, target = "", ""
            if engine == "ClickHouse":
                ratio = f"{p95 / base:>14.2f}x"
                if label == TARGET_QUERY:
                    target = f"<= 1x {'met' if p95 <= base else 'MISSED'}"
            print(f"{label:<22}{engine:>12}{p50:>9.2f}{p95:>9.2f}{ratio:>15}  {target}".rstrip())


def run(args, end):
    """Load both engines, serve each with one worker, measure, report; drops the databases
    (the ClickHouse directory is temporary)."""
    end = floor_to(end, 3600)
    servers = {}
    try:
        with tempfile.TemporaryDirectory(prefix="gf-bench-ch-") as tmp:
            points_url = f"chdb:///{tmp}/points"
            points, ch_seconds, mariadb_seconds = load_both(args.mysql_url, points_url, end)
            print(f"clickhouse: loaded {points:,} points into ClickHouse in {ch_seconds:.1f} s, "
                  f"into MariaDB with rollups in {mariadb_seconds:.1f} s")  # fmt: skip
            getters = {}
            for engine, database in DATABASES.items():
                env = {"DATABASE_URL": f"{args.mysql_url}/{database}", "WEB_CONCURRENCY": "1",
                       "MAINTENANCE_RUNNER": "off", **NO_RECYCLING}  # fmt: skip
                if engine == "ClickHouse":
                    env["POINTS_URL"] = points_url
                servers[engine] = Gunicorn(env).start()
                key, _ = new_key(env["DATABASE_URL"], f"bench-{engine}", 10**9)
                getters[engine] = http_getter(servers[engine].port, key)
            check_same_answers(getters, *iso_range(end, DAYS))
            results = measure(getters, *iso_range(end, DAYS), args.iterations, args.warmup)
    finally:
        for server in servers.values():
            server.stop()
        for database in DATABASES.values():
            drop_database(args.mysql_url, database)
    report(results, args.iterations)
    return results
