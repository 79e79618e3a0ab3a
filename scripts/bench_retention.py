"""Retention benchmark: a million expired points trimmed on the chunked path while a steady
ingest load runs, on MariaDB, in one invocation.

    make bench-retention [BENCH_ARGS="--rows 1000000 --connections 4"]

Loads the expired points into a throwaway database (``gf_bench_retention_<pid>``) where no
daily partition can drop them whole (before 1970-01-02: ``p_past``), so every row goes by the
chunked delete; measures the ingest latency of single counters without the trim, then while
``flask retention run`` trims, and prints rows/s deleted beside both latencies. Targets: p99
during the trim at most 2× the p99 without it, and no request over 1 s.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.db import create_engine_for  # noqa: E402
from app.db.migrate import migrate  # noqa: E402
from scripts.wrk_runner import run_wrk  # noqa: E402
from tests.harness import (  # noqa: E402
    NO_RECYCLING,
    ROOT,
    Gunicorn,
    drop_database,
    new_key,
    recreate_database,
)

DATABASE_PREFIX = "gf_bench_retention_"
FLASK = Path(sys.executable).parent / "flask"
P99_TARGET_RATIO = 2.0
MAX_TARGET_MS = 1000.0
_INSERT = text(
    "INSERT INTO metric_points (metric_id, recorded_at, value) "
    "SELECT m.id, TIMESTAMPADD(MICROSECOND, seq.n, '1970-01-01 00:00:00'), 1 "
    "FROM metrics m CROSS JOIN ("
    "  SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d AS n "
    "  FROM digits a, digits b, digits c, digits e, digits f) seq "
    "WHERE m.id = :metric AND seq.n < :per_metric"
)


def load(engine, rows, metrics):
    """``rows`` expired points over ``metrics`` metrics; seconds it took."""
    per_metric = rows // metrics
    began = time.perf_counter()
    with engine.connect() as conn:
        conn.execute(text("CREATE TEMPORARY TABLE digits (d INT NOT NULL)"))
        conn.execute(text("INSERT INTO digits VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)"))
        for n in range(metrics):
            conn.execute(
                text(
                    "INSERT INTO metrics (name, type, created_at, updated_at) "
                    "VALUES (:name, 'counter', NOW(6), NOW(6))"
                ),
                {"name": f"bench.expired.{n:03d}"},
            )
            metric = conn.execute(text("SELECT LAST_INSERT_ID()")).scalar()
            conn.execute(_INSERT, {"metric": metric, "per_metric": per_metric})
            conn.commit()
    return time.perf_counter() - began


def bodies_file(directory):
    """Single counters over a few dozen recent metrics, one JSON body a line."""
    path = Path(directory) / "counters.jsonl"
    path.write_text("".join(json.dumps({"name": f"bench.live.{i:02d}"}) + "\n" for i in range(40)))
    return path


def load_while_trimming(server, bodies, key, connections, env):
    """Run the trim in its own process and the ingest load beside it, 5 s runs until the trim
    ends: (the trim's report, its seconds, the wrk runs)."""
    command = [str(FLASK), "--app", "app", "retention", "run"]
    began = time.perf_counter()
    trim = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    ended = []  # when the trim ended, not when the 5 s run it ended in did

    def wait():
        ended.append((trim.communicate(), time.perf_counter()))

    waiter = threading.Thread(target=wait)
    waiter.start()
    runs = []
    while waiter.is_alive():
        runs.append(run_wrk(server.base + "/api/metrics/counter", bodies, key, connections, 5))
    waiter.join()
    (output, _), finished = ended[0]
    seconds = finished - began
    if trim.returncode != 0:
        raise RuntimeError(f"retention run failed ({trim.returncode})")
    return json.loads(output), seconds, runs


def report(loaded_seconds, baseline, trim_result, trim_seconds, during, args):
    """Print the figures; the exit status (1 if a target is missed or requests failed)."""
    deleted = trim_result["rows_deleted"]
    p99_base = statistics.median(r.p99_ms for r in baseline)
    p99_trim = max(r.p99_ms for r in during)
    max_trim = max(r.max_ms for r in during)
    errors = sum(r.non_2xx + r.socket_errors for r in baseline + during)
    ratio = p99_trim / p99_base
    print(
        f"Retention benchmark on MariaDB: {deleted:,} expired rows trimmed in chunks of "
        f"{args.chunk:,} while {args.connections} connections post single counters"
    )
    print(f"  load of the expired rows: {loaded_seconds:.1f} s")
    print(f"  trim: {trim_seconds:.1f} s, {deleted / trim_seconds:,.0f} rows/s deleted")
    print(
        f"  ingest without the trim: {statistics.median(r.rate for r in baseline):,.0f} req/s, "
        f"p50 {statistics.median(r.p50_ms for r in baseline):.1f} ms, p99 {p99_base:.1f} ms, "
        f"max {max(r.max_ms for r in baseline):.1f} ms"
    )
    print(
        f"  ingest during the trim ({len(during)} runs of 5 s): "
        f"{statistics.median(r.rate for r in during):,.0f} req/s, "
        f"p50 {statistics.median(r.p50_ms for r in during):.1f} ms, p99 median "
        f"{statistics.median(r.p99_ms for r in during):.1f} ms and worst {p99_trim:.1f} ms, "
        f"max {max_trim:.1f} ms"
    )
    met = ratio <= P99_TARGET_RATIO and max_trim <= MAX_TARGET_MS
    print(
        f"  worst p99 during / p99 without: {ratio:.2f}x (target <= {P99_TARGET_RATIO}x); "
        f"median: {statistics.median(r.p99_ms for r in during) / p99_base:.2f}x; slowest request "
        f"{max_trim:.0f} ms (target <= {MAX_TARGET_MS:.0f} ms): {'met' if met else 'MISSED'}"
    )
    print(f"  non-2xx answers and socket errors: {errors}")
    if args.json:
        figures = {
            "deleted": deleted,
            "trim_seconds": trim_seconds,
            "p99_base_ms": p99_base,
            "p99_trim_ms": p99_trim,
            "max_trim_ms": max_trim,
            "errors": errors,
            "baseline": [r.as_dict() for r in baseline],
            "during": [r.as_dict() for r in during],
        }
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if met and not errors else 1


def run(args, workdir):
    """The whole benchmark on a throwaway database; the exit status."""
    database = f"{DATABASE_PREFIX}{os.getpid()}"
    recreate_database(args.mysql_url, database)
    url = f"{args.mysql_url}/{database}"
    engine = create_engine_for(url)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": args.redis_url,
        "LOG_LEVEL": "WARNING",
        "RETENTION_CHUNK_ROWS": str(args.chunk),
        "MAINTENANCE_RUNNER": "off",
    }
    keep = ("DATABASE_URL", "REDIS_URL", "MAINTENANCE_RUNNER")
    server = Gunicorn({**{k: env[k] for k in keep}, **NO_RECYCLING})
    try:
        migrate(engine)
        loaded = load(engine, args.rows, args.metrics)
        key, _ = new_key(url, "bench-retention", 100_000_000)
        bodies = bodies_file(workdir)
        server.start()
        counter = server.base + "/api/metrics/counter"
        run_wrk(counter, bodies, key, args.connections, 2)  # warm-up
        baseline = [run_wrk(counter, bodies, key, args.connections, 5) for _ in range(3)]
        trim_result, trim_seconds, during = load_while_trimming(
            server, bodies, key, args.connections, env
        )
        return report(loaded, baseline, trim_result, trim_seconds, during, args)
    finally:
        server.cleanup()
        engine.dispose()
        drop_database(args.mysql_url, database)


def main():
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mysql-url", default="mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--metrics", type=int, default=100)
    parser.add_argument("--chunk", type=int, default=10_000, help="RETENTION_CHUNK_ROWS")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--json", metavar="PATH", help="also write the raw figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        sys.exit(run(args, Path(workdir)))


if __name__ == "__main__":
    main()
