"""What GET /ready reports: every dependency the configuration needs, with its latency, and
the state of the work that happens away from requests (the ingest queue, maintenance)."""

import logging
import time

from app.config import maintenance_runner
from app.db import get_db, partitions, ping, run_read, runs
from app.jobs.cli import queue_state
from app.queue_buffer import buffer_state
from app.redis import get_redis
from app.timeutil import isoformat_z, utcnow

log = logging.getLogger(__name__)


def _probe(name, probe):
    """("ok" or "error: Kind", milliseconds) of one check."""
    started = time.perf_counter()
    try:
        probe()
        state = "ok"
    except Exception as exc:  # any failure means not ready; the detail says which
        log.warning("readiness: %s check failed: %s", name, exc)
        state = f"error: {type(exc).__name__}"
    return state, round((time.perf_counter() - started) * 1000, 2)


def dependencies(app):
    """{name: state} and {name: latency in ms} of the database(s) and Redis."""
    db = get_db(app)
    probes = {"database": lambda: ping(db.write)}
    if app.config["DATABASE_READ_URL"]:
        probes["database_read"] = lambda: ping(db.read)
    if app.config["REDIS_URL"]:
        probes["redis"] = lambda: get_redis(app).ping()
    checks, latency = {}, {}
    for name, probe in probes.items():
        checks[name], latency[name] = _probe(name, probe)
    if not app.config["REDIS_URL"]:
        checks["redis"] = "not configured"
    return checks, latency


def queue(app):
    """Queue mode's buffer (points and entries waiting, the oldest one's age, what drains
    did) and the RQ jobs of the ingest queue."""
    if app.config["INGEST_MODE"] != "queue":
        return None
    name = app.config["RQ_INGEST_QUEUE"]
    connection = get_redis(app)
    try:
        return {**buffer_state(connection, app.config), "jobs": queue_state(connection, name)}
    except Exception as exc:  # Redis is down: the redis check says so
        return {"name": name, "error": type(exc).__name__}


def maintenance(app):
    """Each maintenance job's last start and success (and error), and the partitions ahead."""
    db = get_db(app)
    try:
        last = run_read(db.write, runs.last_runs)
        ahead = None if db.is_sqlite else run_read(db.write, partitions.days_ahead, utcnow().date())
    except Exception as exc:  # the database check says what is wrong
        return {"error": type(exc).__name__}
    jobs = {
        job: {
            "last_started_at": _iso(record["last_started_at"]),
            "last_success_at": _iso(record["last_success_at"]),
            **(
                {"last_error": record["last_error"].splitlines()[-1]}
                if record["last_error"]
                else {}
            ),
        }
        for job, record in sorted(last.items())
    }
    return {"runner": maintenance_runner(app.config), "jobs": jobs, "partitions_days_ahead": ahead}


def _iso(moment):
    return isoformat_z(moment) if moment else None


def report(app):
    """(ready?, detail) for GET /ready."""
    checks, latency = dependencies(app)
    detail = {"checks": checks, "latency_ms": latency}
    state = queue(app)
    if state is not None:
        detail["queue"] = state
    detail["maintenance"] = maintenance(app)
    ready = not any(str(value).startswith("error") for value in checks.values())
    return ready, detail
