"""Query benchmark: 10 M points over 1,000 metrics and 30 days in MariaDB/MySQL, with their
minute and hour rollups, and a year of hourly rollups for 100 of the metrics; then the hourly
sum over 1 day and 30 days, the daily avg over 30 days and the daily sum over a year, timed
through the HTTP API (gunicorn) with rollups, through the HTTP API on raw points only
(``source=raw``), and as the raw SQL run directly — interleaved in one run, one keep-alive
client.

    make bench-query [BENCH_ARGS="--iterations 200 --keep"]

Uses its own database (``gf_bench``), dropped at the end unless ``--keep``; ``--reuse`` skips
the load when the kept data is there. ``--only points`` runs this part alone, ``--only tags``
the tags part (``scripts/tags_query_bench.py``, on ``gf_bench_tags``), ``--only percentiles``
the p99 beside the avg (``scripts/percentiles_query_bench.py``, on ``gf_bench_pct``), ``--only
clickhouse`` the ClickHouse points engine beside MariaDB (``scripts/clickhouse_query_bench.py``);
all run by default.
"""

import argparse
import http.client
import json
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy import func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.core.timeutil import isoformat_z  # noqa: E402
from app.db import create_engine_for  # noqa: E402
from app.db.aggregate import bucket_values  # noqa: E402
from app.db.migrate import migrate  # noqa: E402
from app.db.planner import Plan  # noqa: E402
from app.db.schema import metric_points  # noqa: E402
from scripts import (  # noqa: E402
    clickhouse_query_bench,
    percentiles_query_bench,
    tags_query_bench,
)
from scripts.bench_args import parts_of  # noqa: E402
from tests.harness import (  # noqa: E402
    NO_RECYCLING,
    Gunicorn,
    drop_database,
    new_key,
    recreate_database,
)

DATABASE = "gf_bench"
# --only: the 10 M points, tags (scripts/tags_query_bench.py), percentiles
# (scripts/percentiles_query_bench.py), clickhouse (scripts/clickhouse_query_bench.py)
PARTS = ("points", "tags", "percentiles", "clickhouse")
METRICS = 1000
POINTS_PER_METRIC = 10_000
DAYS = 30
STEP_MICROSECONDS = DAYS * 86400 * 1_000_000 // POINTS_PER_METRIC
CHUNK_METRICS = 25
YEAR_METRICS = 100
# label: (operation, window, width, span, p95 target in ms through HTTP with rollups)
QUERIES = {
    "hourly sum, 1 day": ("sum", "1h", 3600, timedelta(days=1), 3),
    "hourly sum, 30 days": ("sum", "1h", 3600, timedelta(days=30), 5),
    "daily avg, 30 days": ("avg", "1d", 86400, timedelta(days=30), 5),
    "daily sum, 1 year": ("sum", "1d", 86400, timedelta(days=365), 10),
}
_ROLLUP = (
    "INSERT INTO {table} (metric_id, bucket, n, total, residual, vmin, vmax) "
    "SELECT metric_id, DATE_FORMAT(recorded_at, '{fmt}'), COUNT(*), "
    "SUM(CAST(value AS DECIMAL(65,30))), 0, MIN(value), MAX(value) "
    "FROM metric_points WHERE metric_id BETWEEN :lo AND :hi GROUP BY 1, 2"
)
_YEAR = text(
    "INSERT INTO metric_rollups_hour (metric_id, bucket, n, total, residual, vmin, vmax) "
    "SELECT m.id, TIMESTAMPADD(HOUR, -1 - seq.n, :first), 40, 20000, 0, 1, 999 "
    "FROM metrics m CROSS JOIN ("
    "  SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d AS n "
    "  FROM digits a, digits b, digits c, digits e) seq "
    "WHERE m.id <= :last_id AND seq.n < :hours"
)
_INSERT_CHUNK = text(
    "INSERT INTO metric_points (metric_id, recorded_at, value) "
    "SELECT m.id, TIMESTAMPADD(MICROSECOND, seq.n * :step + FLOOR(RAND() * :step), :t0), "
    "  ROUND(RAND() * 1000, 3) "
    "FROM metrics m CROSS JOIN ("
    "  SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d AS n "
    "  FROM digits a, digits b, digits c, digits e) seq "
    "WHERE m.id BETWEEN :lo AND :hi ORDER BY m.id, seq.n"
)


def load(engine, first_time):
    """Insert 1,000 metrics (half counters, half values) and 10,000 points each, in PK order,
    with portable INSERT … SELECT chunks; returns (rows, seconds)."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO metrics (name, type, created_at, updated_at) "
                "VALUES (:name, :type, NOW(6), NOW(6))"
            ),
            [
                {"name": f"bench.m{i:04d}", "type": "counter" if i % 2 == 0 else "value"}
                for i in range(METRICS)
            ],
        )
    started = time.perf_counter()
    with engine.connect() as conn:
        conn.execute(text("CREATE TEMPORARY TABLE digits (d INT NOT NULL)"))
        conn.execute(text("INSERT INTO digits VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)"))
        ids = conn.execute(text("SELECT id FROM metrics ORDER BY id")).scalars().all()
        for lo in range(0, len(ids), CHUNK_METRICS):
            chunk = ids[lo : lo + CHUNK_METRICS]
            params = {"step": STEP_MICROSECONDS, "t0": first_time, "lo": chunk[0], "hi": chunk[-1]}
            conn.execute(_INSERT_CHUNK, params)
            conn.commit()
        rows = conn.execute(select(func.count()).select_from(metric_points)).scalar()
        roll_up(conn, ids, first_time)
    return rows, time.perf_counter() - started


def roll_up(conn, ids, first_time):
    """The rollups of the loaded points (what the writer would have kept), and a year of
    hourly rows before them for the first YEAR_METRICS metrics."""
    for table, fmt in (
        ("metric_rollups_minute", "%Y-%m-%d %H:%i:00"),
        ("metric_rollups_hour", "%Y-%m-%d %H:00:00"),
    ):
        statement = text(_ROLLUP.format(table=table, fmt=fmt))
        for lo in range(0, len(ids), CHUNK_METRICS):
            chunk = ids[lo : lo + CHUNK_METRICS]
            conn.execute(statement, {"lo": chunk[0], "hi": chunk[-1]})
            conn.commit()
    first_hour = first_time.replace(minute=0, second=0, microsecond=0)
    conn.execute(
        _YEAR, {"first": first_hour, "last_id": ids[YEAR_METRICS - 1], "hours": (365 - DAYS) * 24}
    )
    conn.execute(text("UPDATE rollup_state SET complete_from = '1970-01-01'"))
    conn.commit()


def percentile(samples, fraction):
    """The nearest-rank percentile of ``samples``."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


class Timer:
    """Times one query three ways; all see the same ranges."""

    def __init__(self, port, raw_key, ids, sql_conn, end):
        self.http = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.raw_key, self.ids, self.sql_conn, self.end = raw_key, ids, sql_conn, end

    def via_http(self, name, operation, window, _width, start, **extra):
        """Milliseconds for GET /api/metrics/aggregate."""
        query = urlencode(
            {"name": name, "operation": operation, "window": window,
             "start": isoformat_z(start), "end": isoformat_z(self.end), **extra}
        )  # fmt: skip
        began = time.perf_counter()
        self.http.request(
            "GET", f"/api/metrics/aggregate?{query}", headers={"X-API-Key": self.raw_key}
        )
        response = self.http.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - began
        if response.status != 200:
            raise SystemExit(f"query failed: {response.status} {body[:300]!r}")
        json.loads(body)
        return elapsed * 1000

    def via_http_raw(self, *args):
        """Milliseconds through HTTP, raw points only (source=raw)."""
        return self.via_http(*args, source="raw")

    def via_sql(self, name, operation, _window, width, start):
        """Milliseconds for the raw GROUP BY on a direct connection."""
        raw_only = Plan(start, self.end, "raw", raw=[(start, self.end)])
        began = time.perf_counter()
        bucket_values(self.sql_conn, self.ids[name], operation, width, raw_only)
        elapsed = time.perf_counter() - began
        self.sql_conn.rollback()
        return elapsed * 1000


def measure(timer, names, iterations, warmup):
    """{query: {side: [ms…]}}: a random metric per run, the sides in random order so none
    always runs on a warmer cache. The year-long query has no raw points to compare with."""
    rng = random.Random(1)
    results = {label: {"rollups": [], "raw": [], "sql": []} for label in QUERIES}
    for iteration in range(warmup + iterations):
        for label, (operation, window, width, span, _) in QUERIES.items():
            year = span > timedelta(days=DAYS)
            sides = [("rollups", timer.via_http)]
            if not year:
                sides += [("raw", timer.via_http_raw), ("sql", timer.via_sql)]
            rng.shuffle(sides)
            pool = names[:YEAR_METRICS] if year else names
            for side, run in sides:
                elapsed = run(rng.choice(pool), operation, window, width, timer.end - span)
                if iteration >= warmup:
                    results[label][side].append(elapsed)
    return results


def _cell(samples, fraction=None):
    if not samples:
        return f"{'-':>10}"
    value = statistics.median(samples) if fraction is None else percentile(samples, fraction)
    return f"{value:>10.2f}"


def report(results, iterations):
    """Print medians and p95 per side, the raw/rollup ratio and the target."""
    print(f"\n{iterations} runs each, random metric per run, one keep-alive client; ms")
    columns = ("HTTP p50", "HTTP p95", "raw p50", "raw p95", "SQL p50", "SQL p95")
    print(f"{'query':<22}" + "".join(f"{c:>10}" for c in columns) + f"{'raw/roll':>10}  target")
    for label, sides in results.items():
        target = QUERIES[label][4]
        p95 = percentile(sides["rollups"], 0.95)
        ratio = (
            f"{statistics.median(sides['raw']) / statistics.median(sides['rollups']):>9.1f}x"
            if sides["raw"]
            else f"{'-':>10}"
        )
        verdict = "met" if p95 <= target else "MISSED"
        cells = "".join(
            _cell(sides[side], fraction)
            for side in ("rollups", "raw", "sql")
            for fraction in (None, 0.95)
        )
        print(f"{label:<22}{cells}{ratio}  p95<={target} {verdict}")


def prepare(args, url, end):
    """Load the data unless reusing it; returns the engine."""
    if not args.reuse:
        recreate_database(args.mysql_url, DATABASE)
    engine = create_engine_for(url)
    if not args.reuse:
        migrate(engine, retention_days=DAYS + 2)
        rows, seconds = load(engine, end - timedelta(days=DAYS))
        print(f"loaded {rows:,} points over {METRICS} metrics in {seconds:.1f} s")
    return engine


def run_points(args, end):
    """The 10 M-point part: load, serve, measure, report, clean up."""
    url = f"{args.mysql_url}/{DATABASE}"
    engine = prepare(args, url, end)
    raw_key, _ = new_key(url, "bench", 10**9)
    with engine.connect() as conn:
        ids = dict(conn.execute(text("SELECT name, id FROM metrics")).all())
    server = Gunicorn(
        {"DATABASE_URL": url, "WEB_CONCURRENCY": "1", "MAINTENANCE_RUNNER": "off", **NO_RECYCLING}
    ).start()
    try:
        with engine.connect() as sql_conn:
            timer = Timer(server.port, raw_key, ids, sql_conn, end)
            results = measure(timer, sorted(ids), args.iterations, args.warmup)
            timer.http.close()
    finally:
        server.stop()
    report(results, args.iterations)
    engine.dispose()
    if not args.keep and not args.reuse:
        drop_database(args.mysql_url, DATABASE)


def main():
    """Each chosen part: load, serve, measure, report, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mysql-url", default="mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--group-iterations", type=int, default=5,
                        help="runs of the tags part's group_by query (seconds each)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the benchmark databases")
    parser.add_argument("--reuse", action="store_true", help="use the kept data, skip the load")
    parser.add_argument(
        "--only",
        type=parts_of(PARTS),
        default=list(PARTS),
        help=f"parts to run, comma-separated (default: {','.join(PARTS)})",
    )
    args = parser.parse_args()
    end = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    load_before = os.getloadavg()
    if "points" in args.only:
        run_points(args, end)
    if "tags" in args.only:
        tags_query_bench.run(args, end)
    if "percentiles" in args.only:
        percentiles_query_bench.run(args, end)
    if "clickhouse" in args.only:
        clickhouse_query_bench.run(args, end)
    print(
        f"load average (1 min) {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after on "
        f"{os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
