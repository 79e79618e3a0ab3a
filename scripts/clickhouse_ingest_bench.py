"""The ClickHouse points engine in the ingest benchmark (``BENCH_ARGS="--only ClickHouse"``):
batches of 1,000 points over 100 metrics (the MariaDB part's bodies) through the service
served with ``POINTS_URL=chdb:///…`` (the in-process engine: one gunicorn worker with
threads, the server's default with it; relational data in a MariaDB database of its own),
beside the same batches to the service on MariaDB alone with four workers
(``WEB_CONCURRENCY=4``), both servers up at once and their runs interleaved, at 2 and 4
connections. Target: ClickHouse >= 1x MariaDB's points/s."""

from app.config import load
from app.db import Store
from scripts import paired_bench
from scripts.ingest_report import Target, wrk_row
from scripts.sync_bench import BATCH_CONNECTIONS, BATCH_PATH, BATCH_POINTS
from tests.harness import NO_RECYCLING, Gunicorn, drop_database, new_key, recreate_database

ENGINES = ("ClickHouse", "MariaDB")
MARIADB_WORKERS = 4
CLICKHOUSE_TARGET = Target(1.0)


def start(engine, env, server_url, database, workdir):
    """Migrate ``database`` (and the points engine, if any) and serve it; (server, key)."""
    recreate_database(server_url, database)
    env = {**env, **NO_RECYCLING, "INGEST_MODE": "sync", "DATABASE_URL": f"{server_url}/{database}"}
    store = Store(load(env))
    try:
        store.migrate()
    finally:
        store.dispose()  # closes the in-process engine: the server opens its directory next
    key, _ = new_key(env["DATABASE_URL"], f"bench-{engine}", 10**9)
    return Gunicorn(env, log_path=workdir / f"{engine}.log").start(), key


def measure(mysql_env, bodies, args, workdir, server_url):
    """{"<engine> <n>": [WrkResult…]} and each server's log lines under "service_log"."""
    workdir.mkdir(parents=True, exist_ok=True)
    prefix = mysql_env["DATABASE_URL"].rsplit("/", 1)[1]
    envs = {
        "ClickHouse": {**mysql_env, "POINTS_URL": f"chdb:///{workdir}/points"},
        "MariaDB": {**mysql_env, "WEB_CONCURRENCY": str(MARIADB_WORKERS)},
    }
    servers, keys, results = {}, {}, {"service_log": []}
    try:
        for engine in ENGINES:
            database = f"{prefix}_{engine.lower()}"
            servers[engine], keys[engine] = start(engine, envs[engine], server_url, database,
                                                  workdir)  # fmt: skip
            paired_bench.check_batch(servers[engine].port, bodies["batch"].read_text(),
                                     keys[engine], engine)  # fmt: skip
        for n in BATCH_CONNECTIONS:
            loads = {f"{engine} {n}": (server.base + BATCH_PATH, bodies["batch"], keys[engine])
                     for engine, server in servers.items()}  # fmt: skip
            paired_bench.interleave(loads, args, connections=n, results=results)
    finally:
        for engine, server in servers.items():
            server.stop()
            results["service_log"] += [f"{engine}: {line}" for line in server.log_lines()]
        for engine in ENGINES:
            drop_database(server_url, f"{prefix}_{engine.lower()}")
    return results


def section(results):
    """The ClickHouse part of the table: (heading, rows)."""
    figures = results["ClickHouse"]
    rows = []
    for n in BATCH_CONNECTIONS:
        mariadb = wrk_row(f"MariaDB x{MARIADB_WORKERS}, {n} conn.", figures[f"MariaDB {n}"],
                          BATCH_POINTS, "pts/s")  # fmt: skip
        rows += [mariadb, wrk_row(f"ClickHouse x1, {n} conn.", figures[f"ClickHouse {n}"],
                                  BATCH_POINTS, "pts/s", ceiling_label=f"MariaDB {n} c.",
                                  ceiling=mariadb.value, target=CLICKHOUSE_TARGET)]  # fmt: skip
    heading = (
        f"ClickHouse (chdb, in process, 1 worker x threads; relational data on MariaDB) beside "
        f"MariaDB (x{MARIADB_WORKERS} workers): batches of {BATCH_POINTS:,} points over 100 "
        "metrics, interleaved"
    )
    return heading, rows


def figures_of(results):
    """(label, [WrkResult…]) of every load, for the error lines."""
    figures = results.get("ClickHouse", {})
    return [(f"ClickHouse part, {load}", runs) for load, runs in figures.items()
            if load != "service_log"]  # fmt: skip


def problem_lines(results):
    """The servers' log lines (they log at WARNING: any line is worth a look)."""
    return paired_bench.problem_lines(results, "ClickHouse")
