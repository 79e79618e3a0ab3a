"""What GET /ready reports: every dependency the configuration needs, with its latency, and
the state of the work that happens away from requests (the ingest queue, maintenance).

Each part is probed in a small thread pool under one deadline (PROBE_SECONDS): a database
that accepts connections but answers nothing makes /ready say 503 in about that time instead
of holding the request for the driver's whole timeout. A probe still hanging from an earlier
call is not started again (it reports the timeout), so a hung dependency ties up one thread,
not one per call. The report is kept for CACHE_SECONDS, so a flood of /ready costs the
dependencies one round of probes a second.
"""

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait

from app.config import maintenance_runner
from app.core.timeutil import isoformat_z, utcnow
from app.db import get_store
from app.infra.redis import get_redis
from app.ingest.queue_buffer import buffer_state
from app.jobs.state import queue_state

log = logging.getLogger(__name__)

EXTENSION = "glowing_fiesta.readiness"
PROBE_SECONDS = 1.5
CACHE_SECONDS = 1.0


class Readiness:
    """One app's probes: their pool, the ones still running, and the last report."""

    def __init__(self, app):
        self.app = app
        self._pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="readiness")
        self._running = {}  # part name → Future of a probe not finished yet
        self._report = (float("-inf"), None)
        self._lock = threading.Lock()

    def report(self):
        """(ready?, detail) for GET /ready, at most CACHE_SECONDS old."""
        with self._lock:
            taken_at, report = self._report
            if time.monotonic() - taken_at < CACHE_SECONDS:
                return report
            report = self._probe_all()
            self._report = (time.monotonic(), report)
            return report

    def _probe_all(self):
        futures = {name: self._start(name, probe) for name, probe in _parts(self.app).items()}
        wait(futures.values(), timeout=PROBE_SECONDS)
        results = {name: _outcome(name, future) for name, future in futures.items()}
        checks = {name: state for name, (state, _) in results.items() if name in _CHECKS}
        latency = {name: ms for name, (_, ms) in results.items() if name in _CHECKS and ms}
        if not self.app.config["REDIS_URL"]:
            checks["redis"] = "not configured"
        detail = {"checks": checks, "latency_ms": latency}
        for name in ("points_engine", "queue", "maintenance"):
            if name in results:
                detail[name] = results[name][1]
        ready = not any(str(value).startswith("error") for value in checks.values())
        return ready, detail

    def _start(self, name, probe):
        running = self._running.get(name)
        if running is not None and not running.done():
            return running  # still hanging from an earlier call: report it, start no other
        future = self._pool.submit(_timed, probe)
        self._running[name] = future
        return future


_CHECKS = ("database", "database_read", "points", "redis")


def _timed(probe):
    started = time.perf_counter()
    value = probe()
    return value, round((time.perf_counter() - started) * 1000, 2)


def _outcome(name, future):
    """("ok" or "error: …", latency ms) of a check; (None, detail) of the other parts."""
    if not future.done():
        log.warning("readiness: %s did not answer within %.1f s", name, PROBE_SECONDS)
        error = f"error: no answer within {PROBE_SECONDS} s"
        return (error, None) if name in _CHECKS else (None, {"error": "Timeout"})
    try:
        value, milliseconds = future.result()
    except Exception as exc:  # any failure means not ready; the detail says which
        log.warning("readiness: %s check failed: %s", name, exc)
        if name in _CHECKS:
            return f"error: {type(exc).__name__}", None
        return None, {"error": type(exc).__name__}
    return ("ok", milliseconds) if name in _CHECKS else (None, value)


def _parts(app):
    """{part name: probe} of what this configuration needs."""
    store = get_store(app)
    parts = {"database": store.ping}
    if app.config["DATABASE_READ_URL"]:
        parts["database_read"] = lambda: store.ping(replica=True)
    if app.config["POINTS_URL"]:
        parts["points"] = store.ping_points
        parts["points_engine"] = store.points_engine
    if app.config["REDIS_URL"]:
        parts["redis"] = lambda: get_redis(app).ping()
    if app.config["INGEST_MODE"] == "queue":
        parts["queue"] = lambda: queue(app)
    parts["maintenance"] = lambda: maintenance(app)
    return parts


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
    store = get_store(app)
    try:
        last = store.maintenance_runs()
        ahead = store.partitions_days_ahead(utcnow().date())
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
    return app.extensions[EXTENSION].report()


def init_app(app):
    """Give the app its probes."""
    app.extensions[EXTENSION] = Readiness(app)
