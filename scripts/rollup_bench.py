"""Rollups in the ingest benchmark, on MariaDB: batch points/s with rollups on and off in one
run, for the batch load (1,000 points a request over 100 metrics), a spread load (over 1,000
metrics) and a hot-counter load (over 10 metrics) — the last also with rollups alone
(``METRICS_RETENTION_DAYS=0``: no raw points kept). Each variant serves its own throwaway
database; the loads run interleaved, 2 connections each."""

import json
from datetime import UTC, datetime
from pathlib import Path

from scripts.ingest_report import Target, wrk_row
from scripts.sync_bench import BATCH_PATH, BATCH_POINTS, WARMUP_SECONDS, post, prepare
from scripts.wrk_runner import run_wrk
from tests.harness import NO_RECYCLING, Gunicorn, drop_database, recreate_database

CONNECTIONS = 2
LOADS = {"batch": 100, "spread": 1000, "hot": 10}  # load: metrics its 1,000 points cover
VARIANTS = {  # variant: (settings, the loads it runs)
    "on": ({}, ("batch", "spread", "hot")),
    "off": ({"METRICS_ROLLUPS": "false"}, ("batch", "spread", "hot")),
    "only": ({"METRICS_RETENTION_DAYS": "0"}, ("hot",)),
}
ON_TARGET = Target(0.85)


def write_bodies(directory):
    """{load: path of its body file}: one batch of 1,000 recent points each."""
    now = datetime.now(UTC).timestamp()
    paths = {}
    for load, metrics in LOADS.items():
        kind = "counter" if load == "hot" else "value"
        items = [
            {"name": f"bench.{load}.{i % metrics:04d}", "type": kind,
             "value": round((i * 7.31) % 1000, 2), "recorded_at": round(now - i / 1000, 3)}
            for i in range(BATCH_POINTS)
        ]  # fmt: skip
        paths[load] = Path(directory) / f"rollup-{load}.jsonl"
        paths[load].write_text(json.dumps({"metrics": items}) + "\n")
    return paths


def measure(mysql_env, args, workdir, server_url):
    """{"variant load": [WrkResult…]} and how each variant's server was set up."""
    workdir.mkdir(parents=True, exist_ok=True)
    bodies = write_bodies(workdir)
    servers, databases, results = {}, [], {}
    try:
        for variant, (settings, _) in VARIANTS.items():
            database = f"{mysql_env['DATABASE_URL'].rsplit('/', 1)[1]}_{variant}"
            recreate_database(server_url, database)
            databases.append(database)
            url = f"{server_url}/{database}"
            env = {**mysql_env, **settings, **NO_RECYCLING, "DATABASE_URL": url}
            key, _ = prepare(env["DATABASE_URL"])
            servers[variant] = (Gunicorn(env, log_path=workdir / f"{variant}.log").start(), key)
        _preflight(servers, bodies)
        for repeat in range(args.repeats):
            _run_repeat(results, servers, bodies, args.seconds, warm=repeat == 0)
    finally:
        for server, _ in servers.values():
            server.stop()
        for database in databases:
            drop_database(server_url, database)
    return results


def _preflight(servers, bodies):
    for variant, (server, key) in servers.items():
        for load in VARIANTS[variant][1]:
            status, answer = post(server.port, BATCH_PATH, bodies[load].read_text(), key)
            if status != 201 or answer.get("accepted") != BATCH_POINTS:
                raise RuntimeError(f"{variant} {load}: {status} {str(answer)[:300]}")


def _run_repeat(results, servers, bodies, seconds, warm):
    for variant, (server, key) in servers.items():
        for load in VARIANTS[variant][1]:
            url = server.base + BATCH_PATH
            if warm:
                run_wrk(url, bodies[load], key, CONNECTIONS, WARMUP_SECONDS)
            result = run_wrk(url, bodies[load], key, CONNECTIONS, seconds)
            results.setdefault(f"{variant} {load}", []).append(result)


def section(results):
    """The rollup part of the table: (heading, rows)."""
    figures = results.get("rollups")
    if not figures:
        return "rollups: not measured", []
    rows = []
    for load in LOADS:
        off = wrk_row(f"{load}, rollups off", figures[f"off {load}"], BATCH_POINTS, "pts/s")
        compare = {"ceiling_label": f"{load}, rollups off", "ceiling": off.value}
        target = ON_TARGET if load == "batch" else None
        rows.append(off)
        rows.append(wrk_row(f"{load}, rollups on", figures[f"on {load}"], BATCH_POINTS, "pts/s",
                            target=target, **compare))  # fmt: skip
        if f"only {load}" in figures:
            rows.append(wrk_row(f"{load}, rollups only", figures[f"only {load}"], BATCH_POINTS,
                                "pts/s", **compare))  # fmt: skip
    heading = (
        f"rollups on MariaDB: batches of {BATCH_POINTS:,} points, {CONNECTIONS} conn.; batch = "
        f"{LOADS['batch']} metrics, spread = {LOADS['spread']:,}, hot = {LOADS['hot']} counters; "
        "'rollups only' keeps no raw points (METRICS_RETENTION_DAYS=0)"
    )
    return heading, rows
