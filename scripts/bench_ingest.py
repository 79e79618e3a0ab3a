"""Ingest benchmark: single points and batches through gunicorn, beside their ceilings.

Each ceiling is measured in the same run: a bare Flask app on the same gunicorn settings for
single points, a plain executemany loop into a copy of ``metric_points`` for batches; on
MariaDB (durable commits, Redis-backed rate limits) and on the embedded SQLite default,
the ClickHouse points engine in process beside MariaDB with four workers
(scripts/clickhouse_ingest_bench.py), then queue mode when this build has it, rollups on and
off (scripts/rollup_bench.py),
batches with tags beside the same without (scripts/tags_ingest_bench.py), value batches (with
percentile sketches) beside counter batches (scripts/sketch_ingest_bench.py) and single points
authenticated by a JWT beside an API key; ``--only`` picks parts (``--only tags``,
``--only sketches``, ``--only jwt``, ``--only ClickHouse``).

    make bench-ingest [BENCH_ARGS="--seconds 4 --repeats 3 --json results.json"]

Every figure is the median of ``--repeats`` runs of ``--seconds`` each, the runs of one
backend interleaved; load comes from wrk (scripts/wrk/ingest.lua) over keep-alive
connections to 127.0.0.1. MariaDB gets its own ``gf_bench_ingest_<pid>`` database, dropped
at the end; SQLite and the queue's Redis live in a temporary directory.
"""

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts import (  # noqa: E402
    clickhouse_ingest_bench,
    jwt_bench,
    queue_bench,
    rollup_bench,
    sketch_ingest_bench,
    tags_ingest_bench,
)
from scripts.bench_args import parts_of  # noqa: E402
from scripts.ingest_report import error_lines, print_table  # noqa: E402
from scripts.sync_bench import BATCH_POINTS, loads, measure_backend, sync_rows  # noqa: E402
from scripts.wrk_runner import WRK_THREADS  # noqa: E402
from tests.harness import drop_abandoned_databases, drop_database, recreate_database  # noqa: E402

DATABASE_PREFIX = "gf_bench_ingest_"
SINGLE_METRICS = 48
BATCH_METRICS = 100
BUSY_WARNING = 0.10
PARTS = ("MariaDB", "SQLite", "ClickHouse", "queue", "rollups", "tags", "sketches", "jwt")


def write_bodies(directory):
    """One body a line for each load; returns {load kind: path}."""
    now = datetime.now(UTC).timestamp()
    batch = {
        "metrics": [
            {"name": f"bench.batch.{i % BATCH_METRICS:03d}", "type": "value",
             "value": round((i * 7.31) % 1000, 2), "recorded_at": round(now - i / 1000, 3)}
            for i in range(BATCH_POINTS)
        ]
    }  # fmt: skip
    bodies = {
        "single": [{"name": f"bench.single.{i:02d}"} for i in range(SINGLE_METRICS)],
        "batch": [batch],
        "queue": [{"name": f"bench.queue.{i:02d}"} for i in range(SINGLE_METRICS)],
    }
    paths = {}
    for kind, lines in bodies.items():
        paths[kind] = Path(directory) / f"{kind}.jsonl"
        paths[kind].write_text("".join(json.dumps(body) + "\n" for body in lines))
    return paths


def run_all(args, tmp, results):
    """Both backends, then queue mode; fills ``results`` as figures arrive."""
    bodies = write_bodies(tmp)
    database = f"{DATABASE_PREFIX}{os.getpid()}"
    drop_abandoned_databases(args.mysql_url, DATABASE_PREFIX)
    recreate_database(args.mysql_url, database)
    try:
        mysql_url = f"{args.mysql_url}/{database}"
        quiet = {"MAINTENANCE_RUNNER": "off"}  # no maintenance job in the middle of a run
        mysql_env = {"DATABASE_URL": mysql_url, "REDIS_URL": args.redis_url, **quiet}
        sqlite_env = {"DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3", "REDIS_URL": "", **quiet}
        parts = {
            "MariaDB": lambda: measure_backend(mysql_env, bodies, args, tmp / "mariadb"),
            "SQLite": lambda: measure_backend(sqlite_env, bodies, args, tmp / "sqlite"),
            "ClickHouse": lambda: clickhouse_ingest_bench.measure(
                mysql_env, bodies, args, tmp / "clickhouse", args.mysql_url
            ),
            "queue": lambda: queue_bench.measure(mysql_env, bodies["queue"], args, tmp / "queue"),
            "rollups": lambda: rollup_bench.measure(
                mysql_env, args, tmp / "rollups", args.mysql_url
            ),
            "tags": lambda: tags_ingest_bench.measure(
                mysql_env, args, tmp / "tags", args.mysql_url
            ),
            "sketches": lambda: sketch_ingest_bench.measure(
                mysql_env, args, tmp / "sketches", args.mysql_url
            ),
            "jwt": lambda: jwt_bench.measure(mysql_env, bodies, args, tmp / "jwt"),
        }
        for part in args.only:
            results[part] = parts[part]()
    finally:
        drop_database(args.mysql_url, database)


def report(results, args, seconds_taken):
    """Print the table and any errors, write --json; returns the exit status."""
    sections = [(f"{label}: {results[label]['about']}", sync_rows(results, label))
                for label in ("MariaDB", "SQLite") if label in results]  # fmt: skip
    if "ClickHouse" in results:
        sections.append(clickhouse_ingest_bench.section(results))
    if "queue" in results:
        sections.append(queue_bench.section(results))
    if "rollups" in results:
        sections.append(rollup_bench.section(results))
    if "tags" in results:
        sections.append(tags_ingest_bench.section(results))
    if "sketches" in results:
        sections.append(sketch_ingest_bench.section(results))
    if "jwt" in results:
        sections.append(jwt_bench.section(results))
    title = (
        f"Ingest benchmark: median of {args.repeats} runs x {args.seconds} s each; "
        f"wrk, {WRK_THREADS} threads, keep-alive connections; took {seconds_taken:.0f} s"
    )
    print_table(title, sections)
    machine = results["machine"]
    machine["load_average_after"] = os.getloadavg()[0]
    busy = machine["busy_share_before"]
    print(
        f"machine: {busy:.0%} busy in the second before the runs; load average "
        f"{machine['load_average_before']:.1f} before, {machine['load_average_after']:.1f} "
        f"after on {machine['cores']} cores"
        + (" (other work skews these figures)" if busy > BUSY_WARNING else "")
    )
    problems = problem_lines(results)
    if problems:
        print("\nERRORS during the runs (the figures above include them):")
        print("\n".join(problems))
    if args.json:
        results["table"] = [
            {"section": heading.splitlines()[0], **row.as_dict()}
            for heading, rows in sections
            for row in rows
        ]
        Path(args.json).write_text(json.dumps(results, indent=2, default=_raw) + "\n")
        print(f"\nraw figures: {args.json}")
    return 1 if problems else 0


def problem_lines(results):
    """Non-2xx answers, socket errors, the service's log lines and queue-mode failures."""
    backends = [label for label in ("MariaDB", "SQLite") if label in results]
    figures = [
        (f"{label} {load.name}", results[label][load.name])
        for label in backends
        for load in loads()
    ]
    figures += [(f"rollups {name}", runs) for name, runs in results.get("rollups", {}).items()]
    figures += [(f"tags {load}", results["tags"][load]) for load in tags_ingest_bench.LOADS
                if load in results.get("tags", {})]  # fmt: skip
    sketches = results.get("sketches", {})
    figures += [(f"sketches {load}", sketches[load]) for load in sketch_ingest_bench.LOADS
                if load in sketches]  # fmt: skip
    figures += jwt_bench.figures_of(results) + clickhouse_ingest_bench.figures_of(results)
    lines = (
        error_lines(figures)
        + clickhouse_ingest_bench.problem_lines(results)
        + tags_ingest_bench.problem_lines(results)
        + sketch_ingest_bench.problem_lines(results)
    )
    for label in backends + (["jwt"] if "jwt" in results else []):
        log = results[label]["service_log"]
        if log:
            lines.append(f"  {label}: the service logged {len(log)} lines, the first: {log[0]}")
    return lines + (queue_bench.problem_lines(results) if "queue" in results else [])


def _raw(value):
    return value.as_dict()


def machine_busy_share(seconds=1.0):
    """The share of all cores busy over ``seconds`` (from /proc/stat): other work on the
    machine skews every figure, so the report says how busy it was before the runs."""

    def sample():
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle and iowait
        return sum(fields), idle

    total_before, idle_before = sample()
    time.sleep(seconds)
    total_after, idle_after = sample()
    return 1 - (idle_after - idle_before) / max(1, total_after - total_before)


def _at_least_one(raw):
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_args(argv=None):
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mysql-url", default="mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0",
                        help="the rate limits' Redis on MariaDB")  # fmt: skip
    parser.add_argument(
        "--seconds", type=_at_least_one, default=4, help="length of a run (whole s)"
    )
    parser.add_argument("--repeats", type=_at_least_one, default=3, help="runs per figure (median)")
    parser.add_argument("--json", metavar="PATH", help="also write the raw figures here")
    parser.add_argument("--steady-seconds", type=_at_least_one, default=60,
                        help="queue mode's steady load (whole s)")  # fmt: skip
    parser.add_argument(
        "--only",
        type=parts_of(PARTS),
        default=list(PARTS),
        help=f"parts to run, comma-separated (default: {','.join(PARTS)})",
    )
    return parser.parse_args(argv)


def main():
    """Measure, clean up (on Ctrl-C or SIGTERM too), report."""
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds through the finally
    busy = machine_busy_share()
    started = time.perf_counter()
    results = {
        "settings": {"seconds": args.seconds, "repeats": args.repeats, "wrk_threads": WRK_THREADS},
        "machine": {
            "cores": os.cpu_count(),
            "busy_share_before": busy,
            "load_average_before": os.getloadavg()[0],
        },
    }
    try:
        with tempfile.TemporaryDirectory(prefix="gf-bench-ingest-") as tmp:
            run_all(args, Path(tmp), results)
    except KeyboardInterrupt:
        sys.exit("interrupted: servers stopped, benchmark database dropped")
    sys.exit(report(results, args, time.perf_counter() - started))


if __name__ == "__main__":
    main()
