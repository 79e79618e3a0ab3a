"""One backend of the ingest benchmark in sync mode: the service and the bare app on the
same gunicorn settings, the executemany ceiling on the same database, and interleaved
repeats of every load."""

import http.client
import json
import os
import statistics
import sys
from dataclasses import dataclass

from sqlalchemy import text

from app.config import server_settings
from app.db import create_engine_for
from app.db.migrate import migrate
from scripts.executemany_ceiling import Ceiling, create_table
from scripts.ingest_report import Row, Target, wrk_row
from scripts.wrk_runner import run_wrk
from tests.harness import NO_RECYCLING, Gunicorn, new_key

SINGLE_PATH = "/api/metrics/counter"
BATCH_PATH = "/api/metrics/batch"
BARE_APP = "scripts.bare_app:app"
SINGLE_CONNECTIONS = (16, 64)
BATCH_CONNECTIONS = (2, 4)
CEILING_CONNECTIONS = (1, 2)
BATCH_POINTS = 1000
# High enough that no run comes near it: the limit's Redis round trip is measured, not a 429.
RATE_LIMIT_PER_MINUTE = 10**9
WARMUP_SECONDS = 1
SINGLE_TARGET = Target(0.6, max_p99_ms=25)
BATCH_TARGET = Target(0.6)


@dataclass(frozen=True)
class Load:
    """One wrk load: which server, which route and bodies, how many connections."""

    name: str
    server: str  # "app" or "bare"
    path: str
    bodies: str
    connections: int


def loads():
    """Every load of a backend, in the order one repeat runs them."""
    found = []
    for n in SINGLE_CONNECTIONS:
        found.append(Load(f"bare {n}", "bare", SINGLE_PATH, "single", n))
        found.append(Load(f"single {n}", "app", SINGLE_PATH, "single", n))
    for n in BATCH_CONNECTIONS:
        found.append(Load(f"batch {n}", "app", BATCH_PATH, "batch", n))
    return found


def prepare(url):
    """Migrate, create the ceiling's table and an API key; returns (raw key, description)."""
    engine = create_engine_for(url)
    try:
        migrate(engine)
        create_table(engine)
        key, _ = new_key(url, "bench-ingest", RATE_LIMIT_PER_MINUTE)
        return key, describe(engine)
    finally:
        engine.dispose()


def describe(engine):
    """The database's version, and on MySQL/MariaDB how durable a commit is."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            version = conn.execute(text("SELECT sqlite_version()")).scalar()
            return f"SQLite {version} (WAL, synchronous=FULL)"
        version, flush = conn.execute(
            text("SELECT VERSION(), @@innodb_flush_log_at_trx_commit")
        ).one()
    return f"{version}, innodb_flush_log_at_trx_commit={flush}"


def post(port, path, body, key):
    """(status, parsed JSON) of one POST."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"X-API-Key": key, "Content-Type": "application/json"}
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def preflight(port, bodies, key):
    """One request of each load, checked by hand: wrk counts statuses, not bodies."""
    single = bodies["single"].read_text().splitlines()[0]
    status, answer = post(port, SINGLE_PATH, single, key)
    if status != 201:
        raise RuntimeError(f"single point answered {status}: {answer}")
    batch = bodies["batch"].read_text().splitlines()[0]
    status, answer = post(port, BATCH_PATH, batch, key)
    if status != 201 or answer.get("accepted") != BATCH_POINTS:
        raise RuntimeError(f"batch answered {status}: {str(answer)[:300]}")


def start_servers(env, logdir):
    """The service and the bare app, both from gunicorn.conf.py with ``env``."""
    servers = {
        "app": Gunicorn({**env, **NO_RECYCLING}, log_path=logdir / "app.log"),
        "bare": Gunicorn({**env, **NO_RECYCLING}, app_uri=BARE_APP, log_path=logdir / "bare.log"),
    }
    try:
        for server in servers.values():
            server.start()
    except BaseException:
        stop_servers(servers)
        raise
    return servers


def stop_servers(servers):
    """Stop whichever of them started."""
    for server in servers.values():
        if server.process is not None:
            server.stop()


def measure_backend(env, bodies, args, logdir):
    """Every figure of one backend: {"about", "gunicorn", figure: [runs…]}."""
    logdir.mkdir(parents=True, exist_ok=True)
    env = {**env, "INGEST_MODE": "sync"}
    key, about = prepare(env["DATABASE_URL"])
    settings = server_settings({**os.environ, **env})
    redis = "Redis rate limits" if env.get("REDIS_URL") else "in-process rate limits"
    results = {
        "about": f"{about}; {redis}; gunicorn {settings['workers']} worker(s) x "
        f"{settings['threads']} threads",
        "gunicorn": {"workers": settings["workers"], "threads": settings["threads"]},
    }
    servers = start_servers(env, logdir)
    ceiling = None
    try:
        ceiling = Ceiling(env["DATABASE_URL"], max(CEILING_CONNECTIONS))
        preflight(servers["app"].port, bodies, key)
        for repeat in range(args.repeats):
            run_repeat(results, servers, ceiling, bodies, key, args.seconds, warm=repeat == 0)
    except Exception:
        print(f"the service's log, last lines:\n{tail(servers['app'].errors())}", file=sys.stderr)
        raise
    finally:
        if ceiling:
            ceiling.close()
        stop_servers(servers)
    # The servers log at WARNING: any line at all is worth a look.
    results["service_log"] = servers["app"].errors().splitlines()
    return results


def tail(log, lines=20):
    """The last ``lines`` lines of a log."""
    return "\n".join(log.splitlines()[-lines:])


def run_repeat(results, servers, ceiling, bodies, key, seconds, warm):
    """One run of every figure, appended to ``results``; the first repeat warms each load."""
    for n in CEILING_CONNECTIONS:
        results.setdefault(f"executemany {n}", []).append(ceiling.measure(n, seconds))
    for load in loads():
        url = servers[load.server].base + load.path
        if warm:
            run_wrk(url, bodies[load.bodies], key, load.connections, WARMUP_SECONDS)
        result = run_wrk(url, bodies[load.bodies], key, load.connections, seconds)
        results.setdefault(load.name, []).append(result)


def sync_rows(results, label):
    """The table rows of one backend."""
    figures = results[label]
    rows = [
        Row(f"executemany, {n} conn.", statistics.median(figures[f"executemany {n}"]), "rows/s")
        for n in CEILING_CONNECTIONS
    ]
    for n in SINGLE_CONNECTIONS:
        bare = wrk_row(f"bare HTTP, {n} conn.", figures[f"bare {n}"])
        target = SINGLE_TARGET if n == SINGLE_CONNECTIONS[0] else None
        compare = {"ceiling_label": f"bare {n} conn.", "ceiling": bare.value, "target": target}
        rows += [bare, wrk_row(f"single point, {n} conn.", figures[f"single {n}"], **compare)]
    ceiling = statistics.median(figures[f"executemany {max(CEILING_CONNECTIONS)}"])
    for n in BATCH_CONNECTIONS:
        compare = {"ceiling_label": "executemany 2 conn.", "ceiling": ceiling}
        rows.append(
            wrk_row(f"batch of {BATCH_POINTS:,}, {n} conn.", figures[f"batch {n}"],
                    BATCH_POINTS, "pts/s", target=BATCH_TARGET, **compare)
        )  # fmt: skip
    return rows
