"""Tags in the ingest benchmark, on MariaDB (``BENCH_ARGS="--only tags"``): batches of 1,000
points over 100 metrics with 3 tags a point (host, region, status: 10 series a metric, 1,000
in all, made by the first batch) beside the same batches without tags, to other metrics of the
same server and database; the two loads run interleaved (their order alternating from one
repeat to the next), 2 connections each. Target: tagged >= 0.8x untagged points/s."""

import json
from datetime import UTC, datetime
from pathlib import Path

from scripts import paired_bench
from scripts.ingest_report import Target
from scripts.paired_bench import CONNECTIONS
from scripts.sync_bench import BATCH_POINTS

METRICS = 100
LOADS = ("untagged", "tagged")
TAGGED_TARGET = Target(0.8)


def tags_of(index):
    """Point ``index``'s tags: the 10 points a metric gets in a batch are 10 series."""
    step = index // METRICS
    return {"host": f"web-{step % 10}", "region": f"r{index % 4}", "status": f"{200 + step % 5}"}


def write_bodies(directory):
    """{load: path of its body file}: the same 1,000 points, with and without tags."""
    now = datetime.now(UTC).timestamp()
    paths = {}
    for load in LOADS:
        items = []
        for i in range(BATCH_POINTS):
            item = {
                "name": f"bench.{load}.{i % METRICS:03d}",
                "type": "value",
                "value": round((i * 7.31) % 1000, 2),
                "recorded_at": round(now - i / 1000, 3),
            }
            if load == "tagged":
                item["tags"] = tags_of(i)
            items.append(item)
        paths[load] = Path(directory) / f"tags-{load}.jsonl"
        paths[load].write_text(json.dumps({"metrics": items}) + "\n")
    return paths


def measure(mysql_env, args, workdir, server_url):
    """{load: [WrkResult…]}, and the service's log lines under "service_log"."""
    workdir.mkdir(parents=True, exist_ok=True)
    return paired_bench.measure(mysql_env, args, workdir, server_url, write_bodies(workdir), "tags")


def section(results):
    """The tags part of the table: (heading, rows)."""
    heading = (
        f"tags on MariaDB: batches of {BATCH_POINTS:,} points over {METRICS} metrics, "
        f"{CONNECTIONS} conn., interleaved; 3 tags a point = 10 series a metric"
    )
    plain, tagged = ("untagged", "batch, no tags"), ("tagged", "batch, 3 tags a point")
    return paired_bench.section(results, "tags", heading, plain, tagged, TAGGED_TARGET)


def problem_lines(results):
    """The service's log lines (it logs at WARNING: any line is worth a look)."""
    return paired_bench.problem_lines(results, "tags")
