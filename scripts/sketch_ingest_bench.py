"""Percentile sketches in the ingest benchmark, on MariaDB (``BENCH_ARGS="--only sketches"``):
batches of 1,000 points over 100 value metrics — whose rollup rows keep a sketch, read and
written back merged in each transaction — beside the same batches to 100 counters, whose rows
keep none (the writer's only difference between the two types), interleaved on one server and
database, 2 connections each. Target: with sketches >= 0.8x without."""

import json
from datetime import UTC, datetime
from pathlib import Path

from scripts import paired_bench
from scripts.ingest_report import Target
from scripts.paired_bench import CONNECTIONS
from scripts.sync_bench import BATCH_POINTS

METRICS = 100
LOADS = {"counter": "without", "value": "with"}  # metric type: sketches kept
SKETCH_TARGET = Target(0.8)


def write_bodies(directory):
    """{type: path of its body file}: the same 1,000 values, as counters and as values; spread
    over the last minute and a half, so a batch touches two minute rows of a metric."""
    now = datetime.now(UTC).timestamp()
    paths = {}
    for kind in LOADS:
        items = [
            {"name": f"bench.{kind}.{i % METRICS:03d}", "type": kind,
             "value": round((i * 7.31) % 1000, 2), "recorded_at": round(now - i * 0.09, 3)}
            for i in range(BATCH_POINTS)
        ]  # fmt: skip
        paths[kind] = Path(directory) / f"sketch-{kind}.jsonl"
        paths[kind].write_text(json.dumps({"metrics": items}) + "\n")
    return paths


def measure(mysql_env, args, workdir, server_url):
    """{type: [WrkResult…]}, and the service's log lines under "service_log"."""
    workdir.mkdir(parents=True, exist_ok=True)
    return paired_bench.measure(
        mysql_env, args, workdir, server_url, write_bodies(workdir), "sketches"
    )


def section(results):
    """The sketches part of the table: (heading, rows)."""
    heading = (
        f"percentile sketches on MariaDB: batches of {BATCH_POINTS:,} points over {METRICS} "
        f"metrics, {CONNECTIONS} conn., interleaved; values keep a sketch a rollup row"
    )
    plain, sketched = (
        ("counter", "batch, counters (no sketch)"),
        ("value", "batch, values (sketches)"),
    )
    return paired_bench.section(results, "sketches", heading, plain, sketched, SKETCH_TARGET)


def problem_lines(results):
    """The service's log lines (it logs at WARNING: any line is worth a look)."""
    return paired_bench.problem_lines(results, "sketches")
