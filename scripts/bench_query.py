"""Query benchmark: 10 M points over 1,000 metrics and 30 days in MariaDB/MySQL, then the
hourly sum over 1 day and 30 days and the daily avg over 30 days, timed through the HTTP API
(gunicorn) and as the same SQL run directly, interleaved in one run.

    make bench-query [BENCH_ARGS="--iterations 200 --keep"]

Uses its own database (``gf_bench``), dropped at the end unless ``--keep``; ``--reuse`` skips
the load when the kept data is there.
"""

import argparse
import http.client
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy import func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.auth import create_key  # noqa: E402
from app.db import create_engine_for, run_in_transaction  # noqa: E402
from app.db.aggregate import bucket_values  # noqa: E402
from app.db.migrate import migrate  # noqa: E402
from app.db.schema import metric_points  # noqa: E402
from app.timeutil import isoformat_z  # noqa: E402
from scripts.harness import Gunicorn, drop_database, recreate_database  # noqa: E402

DATABASE = "gf_bench"
METRICS = 1000
POINTS_PER_METRIC = 10_000
DAYS = 30
STEP_MICROSECONDS = DAYS * 86400 * 1_000_000 // POINTS_PER_METRIC
CHUNK_METRICS = 25
QUERIES = {
    "hourly sum, 1 day": ("sum", "1h", 3600, timedelta(days=1)),
    "hourly sum, 30 days": ("sum", "1h", 3600, timedelta(days=30)),
    "daily avg, 30 days": ("avg", "1d", 86400, timedelta(days=30)),
}
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
    return rows, time.perf_counter() - started


def percentile(samples, fraction):
    """The nearest-rank percentile of ``samples``."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


class Timer:
    """Times one query through HTTP or as direct SQL; both sides see the same ranges."""

    def __init__(self, port, raw_key, ids, sql_conn, end):
        self.http = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.raw_key, self.ids, self.sql_conn, self.end = raw_key, ids, sql_conn, end

    def via_http(self, name, operation, window, _width, start):
        """Milliseconds for GET /api/metrics/aggregate."""
        query = urlencode(
            {"name": name, "operation": operation, "window": window,
             "start": isoformat_z(start), "end": isoformat_z(self.end)}
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

    def via_sql(self, name, operation, _window, width, start):
        """Milliseconds for the service's own GROUP BY on a direct connection."""
        began = time.perf_counter()
        bucket_values(self.sql_conn, self.ids[name], operation, width, start, self.end)
        elapsed = time.perf_counter() - began
        self.sql_conn.rollback()
        return elapsed * 1000


def measure(timer, names, iterations, warmup):
    """{query: {"http": [ms…], "sql": [ms…]}}: a random metric per run, the two sides in
    random order so neither always runs on a warmer cache."""
    rng = random.Random(1)
    results = {label: {"http": [], "sql": []} for label in QUERIES}
    for iteration in range(warmup + iterations):
        for label, (operation, window, width, span) in QUERIES.items():
            sides = [("http", timer.via_http), ("sql", timer.via_sql)]
            rng.shuffle(sides)
            for side, run in sides:
                elapsed = run(rng.choice(names), operation, window, width, timer.end - span)
                if iteration >= warmup:
                    results[label][side].append(elapsed)
    return results


def report(results, iterations):
    """Print medians, p95 and the HTTP/SQL ratio per query."""
    print(f"\n{iterations} runs each, random metric per run; milliseconds")
    columns = ("HTTP p50", "HTTP p95", "SQL p50", "SQL p95")
    print(f"{'query':<22}" + "".join(f"{c:>10}" for c in columns) + f"{'p50 ratio':>11}")
    for label, sides in results.items():
        h50, h95 = statistics.median(sides["http"]), percentile(sides["http"], 0.95)
        s50, s95 = statistics.median(sides["sql"]), percentile(sides["sql"], 0.95)
        print(f"{label:<22}{h50:>10.2f}{h95:>10.2f}{s50:>10.2f}{s95:>10.2f}{h50 / s50:>10.2f}x")


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


def main():
    """Load, serve, measure, report, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mysql-url", default="mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the gf_bench database")
    parser.add_argument("--reuse", action="store_true", help="use the kept data, skip the load")
    args = parser.parse_args()
    url = f"{args.mysql_url}/{DATABASE}"
    end = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    engine = prepare(args, url, end)
    raw_key, _ = run_in_transaction(engine, create_key, "bench", 10**9)
    with engine.connect() as conn:
        ids = dict(conn.execute(text("SELECT name, id FROM metrics")).all())
    server = Gunicorn({"DATABASE_URL": url, "WEB_CONCURRENCY": "1"}).start()
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


if __name__ == "__main__":
    main()
