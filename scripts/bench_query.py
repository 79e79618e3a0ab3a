"""Query benchmark: 10 M points over 1,000 metrics and 30 days in MariaDB/MySQL, then the
hourly sum over 1 day and 30 days and the daily avg over 30 days, timed through the HTTP API
(gunicorn) and as the same SQL run directly, interleaved in one run.

    make bench-query [BENCH_ARGS="--iterations 200 --keep"]

Uses its own database (``gf_bench`` on BENCH_MYSQL_URL's server), dropped at the end unless
``--keep``; ``--reuse`` skips the load when the data is already there.
"""

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy import create_engine, func, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.auth import create_key  # noqa: E402
from app.db import create_engine_for, run_in_transaction  # noqa: E402
from app.db.aggregate import bucket_values  # noqa: E402
from app.db.migrate import migrate  # noqa: E402
from app.db.schema import metric_points  # noqa: E402
from app.timeutil import isoformat_z  # noqa: E402

SERVER_URL = os.environ.get("BENCH_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
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


def database_url():
    return f"{SERVER_URL}/{DATABASE}"


def recreate_database():
    admin = create_engine(SERVER_URL + "/", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {DATABASE}"))
        conn.execute(text(f"CREATE DATABASE {DATABASE}"))
    admin.dispose()


def drop_database():
    admin = create_engine(SERVER_URL + "/", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {DATABASE}"))
    admin.dispose()


def load(engine, first_time):
    """1,000 metrics (half counters, half values), 10,000 points each, in PK order."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO metrics (name, type, created_at, updated_at) VALUES "
                "(:name, :type, NOW(6), NOW(6))"
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
            conn.execute(
                text(
                    "INSERT INTO metric_points (metric_id, recorded_at, value) "
                    "SELECT m.id, TIMESTAMPADD(MICROSECOND, "
                    "  seq.n * :step + FLOOR(RAND() * :step), :t0), ROUND(RAND() * 1000, 3) "
                    "FROM metrics m CROSS JOIN ("
                    "  SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d AS n "
                    "  FROM digits a, digits b, digits c, digits e) seq "
                    "WHERE m.id BETWEEN :lo AND :hi ORDER BY m.id, seq.n"
                ),
                {"step": STEP_MICROSECONDS, "t0": first_time, "lo": chunk[0], "hi": chunk[-1]},
            )
            conn.commit()
        count = conn.execute(select(func.count()).select_from(metric_points)).scalar()
    return count, time.perf_counter() - started


def start_server(port):
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
        "WEB_CONCURRENCY": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.1)
    process.terminate()
    raise SystemExit("gunicorn did not start")


def percentile(samples, fraction):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def run(args):
    end = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    first_time = end - timedelta(days=DAYS)
    engine = create_engine_for(database_url()) if args.reuse else None
    if not args.reuse:
        recreate_database()
        engine = create_engine_for(database_url())
        migrate(engine, retention_days=DAYS + 2)
        rows, seconds = load(engine, first_time)
        print(f"loaded {rows:,} points over {METRICS} metrics in {seconds:.1f} s")
    raw_key, _ = run_in_transaction(engine, create_key, "bench", 10**9)
    with engine.connect() as conn:
        ids = dict(conn.execute(text("SELECT name, id FROM metrics")).all())
        span = conn.execute(
            text("SELECT MIN(recorded_at), MAX(recorded_at) FROM metric_points")
        ).one()
    print(f"points span {span[0]} .. {span[1]}")
    names = sorted(ids)
    port = args.port
    server = start_server(port)
    http_conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    rng = random.Random(1)
    results = {label: {"http": [], "sql": []} for label in QUERIES}

    def time_http(name, operation, window, start):
        query = urlencode(
            {
                "name": name,
                "operation": operation,
                "window": window,
                "start": isoformat_z(start),
                "end": isoformat_z(end),
            }
        )
        began = time.perf_counter()
        http_conn.request("GET", f"/api/metrics/aggregate?{query}", headers={"X-API-Key": raw_key})
        response = http_conn.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - began
        assert response.status == 200, body[:300]
        return elapsed, json.loads(body)

    def time_sql(conn, name, operation, width, start):
        began = time.perf_counter()
        values = bucket_values(conn, ids[name], operation, width, start, end)
        return time.perf_counter() - began, values

    try:
        with engine.connect() as sql_conn:
            for iteration in range(args.warmup + args.iterations):
                for label, (operation, window, width, span_length) in QUERIES.items():
                    start = end - span_length
                    pair = [("http", rng.choice(names)), ("sql", rng.choice(names))]
                    rng.shuffle(pair)  # neither side always runs first
                    for side, name in pair:
                        if side == "http":
                            elapsed, body = time_http(name, operation, window, start)
                        else:
                            elapsed, _ = time_sql(sql_conn, name, operation, width, start)
                        if iteration >= args.warmup:
                            results[label][side].append(elapsed * 1000)
                sql_conn.rollback()
    finally:
        http_conn.close()
        server.terminate()
        server.wait(30)
    report(results, args.iterations)
    engine.dispose()
    if not args.keep and not args.reuse:
        drop_database()


def report(results, iterations):
    print(f"\n{iterations} runs each, random metric per run; milliseconds")
    header = f"{'query':<22}{'HTTP p50':>10}{'HTTP p95':>10}{'SQL p50':>10}{'SQL p95':>10}"
    print(header + f"{'p50 ratio':>11}")
    for label, sides in results.items():
        http_ms, sql_ms = sides["http"], sides["sql"]
        h50, h95 = statistics.median(http_ms), percentile(http_ms, 0.95)
        s50, s95 = statistics.median(sql_ms), percentile(sql_ms, 0.95)
        print(f"{label:<22}{h50:>10.2f}{h95:>10.2f}{s50:>10.2f}{s95:>10.2f}{h50 / s50:>10.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--keep", action="store_true", help="keep the gf_bench database")
    parser.add_argument("--reuse", action="store_true", help="use the kept data, skip the load")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
