"""Queue mode (``INGEST_MODE=queue``) in the ingest benchmark: a private, durable Redis for
the queue, 202s with no worker running, then the drain of the queue by a burst worker alone,
timed by watching the points land in the database."""

import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text

from app.auth import create_key
from app.db import create_engine_for, run_in_transaction
from app.timeutil import utcnow
from scripts.harness import NO_RECYCLING, ROOT, Gunicorn, RedisServer
from scripts.ingest_report import Row, Target, error_lines, wrk_row
from scripts.sync_bench import RATE_LIMIT_PER_MINUTE, SINGLE_PATH, WARMUP_SECONDS, post
from scripts.wrk_runner import run_wrk

FLASK = Path(sys.executable).parent / "flask"
WORKER_COMMAND = [str(FLASK), "--app", "app", "jobs", "worker", "--queue", "ingest", "--burst"]
POLL_SECONDS = 0.02
QUEUE_CONNECTIONS = 16
NAME_PATTERN = "bench.queue.%"
DRAIN_TIMEOUT_SECONDS = 60
ACCEPT_TARGET = Target(1.3)
DRAIN_TARGET = Target(0.6)
NOT_AVAILABLE = "queue mode: not measured"
_COUNT_POINTS = text(
    "SELECT COUNT(*) FROM metric_points p JOIN metrics m ON m.id = p.metric_id "
    "WHERE m.name LIKE :pattern AND p.recorded_at >= :since"
)


@dataclass
class Drain:
    """One drain: points written, the worker's wall time (start-up included) and the time
    from the last look before the first point landed to the first look after the last."""

    points: int
    worker_seconds: float
    active_seconds: float
    exit_code: int

    @property
    def rate(self):
        """Points per second while points were landing."""
        return self.points / self.active_seconds if self.active_seconds else 0.0

    def as_dict(self):
        """The raw figures, for --json."""
        return {**asdict(self), "rate": self.rate}


def count_points(engine, pattern, since):
    """Points of metrics whose name matches ``pattern`` recorded at or after ``since``."""
    with engine.connect() as conn:
        return conn.execute(_COUNT_POINTS, {"pattern": pattern, "since": since}).scalar()


def drain(env, engine, pattern, since, log_path, timeout):
    """Run a burst worker until it exits (or ``timeout``), watching the points land."""
    baseline = count_points(engine, pattern, since)
    samples = []
    with open(log_path, "ab") as log:
        began = time.perf_counter()
        worker = subprocess.Popen(WORKER_COMMAND, cwd=ROOT, env=env, stdout=log, stderr=log)
        try:
            while worker.poll() is None and time.perf_counter() - began < timeout:
                samples.append((time.perf_counter(), count_points(engine, pattern, since)))
                time.sleep(POLL_SECONDS)
        finally:
            if worker.poll() is None:  # past the timeout, or interrupted
                worker.kill()
            exit_code = worker.wait()
        worker_seconds = time.perf_counter() - began
    samples.append((time.perf_counter(), count_points(engine, pattern, since)))
    active = _active_seconds(samples, baseline, began)
    return Drain(samples[-1][1] - baseline, worker_seconds, active, exit_code)


def _active_seconds(samples, baseline, began):
    """From the last sample still at ``baseline`` (or the worker's start) to the first at
    the final count: at most two poll intervals longer than the drain itself."""
    final = samples[-1][1]
    if final == baseline:
        return 0.0
    before = [t for t, n in samples if n == baseline]
    first_final = next(t for t, n in samples if n == final)
    return first_final - (before[-1] if before else began)


def measure(mysql_env, bodies, args, workdir):
    """{"status", "accepted": [WrkResult…], "drain": [Drain…]} on MariaDB; a status alone
    when the run failed."""
    workdir.mkdir(parents=True, exist_ok=True)
    durable = RedisServer(workdir / "redis")
    env = {**mysql_env, "REDIS_URL": durable.url, "INGEST_MODE": "queue", "LOG_LEVEL": "WARNING"}
    engine = create_engine_for(mysql_env["DATABASE_URL"])
    server = Gunicorn({**env, **NO_RECYCLING}, log_path=workdir / "app.log")
    try:
        durable.start()
        server.start()
        key, _ = run_in_transaction(engine, create_key, "bench-queue", RATE_LIMIT_PER_MINUTE)
        runs = QueueRuns(server, engine, {**os.environ, **env}, bodies, key, workdir)
        runs.run(args.repeats, args.seconds)
        return {"status": "measured", "accepted": runs.accepted, "drain": runs.drains}
    except RuntimeError as exc:
        return {"status": f"queue mode: FAILED: {exc}"}
    finally:
        if server.process is not None:
            server.stop()
        durable.stop()
        engine.dispose()


class QueueRuns:
    """Repeated load-then-drain runs against a queue-mode server."""

    def __init__(self, server, engine, env, bodies, key, workdir):
        self.server, self.engine, self.env = server, engine, env
        self.bodies, self.key, self.workdir = bodies, key, workdir
        self.accepted, self.drains = [], []

    def run(self, repeats, seconds):
        """A checked request, an unmeasured warm-up, then ``repeats`` measured runs."""
        first = self.bodies.read_text().splitlines()[0]
        status, answer = post(self.server.port, SINGLE_PATH, first, self.key)
        if status != 202:
            raise RuntimeError(f"a single point in queue mode answered {status}: {answer}")
        self.once(WARMUP_SECONDS)
        self.accepted.clear()
        self.drains.clear()
        for _ in range(repeats):
            self.once(seconds)

    def once(self, seconds):
        """202s for ``seconds`` with no worker, then a burst worker drains them alone."""
        since = utcnow() - timedelta(seconds=1)
        url = self.server.base + SINGLE_PATH
        accepted = run_wrk(url, self.bodies, self.key, QUEUE_CONNECTIONS, seconds)
        log = self.workdir / "worker.log"
        result = drain(self.env, self.engine, NAME_PATTERN, since, log, DRAIN_TIMEOUT_SECONDS)
        self.accepted.append(accepted)
        self.drains.append(result)


def lost_points(accepted, drains):
    """Points answered 202 that no drain wrote (wrk may miss a few 202s sent as it stops,
    so more written than counted is normal)."""
    lost = 0
    for run, result in zip(accepted, drains, strict=True):
        lost += max(0, run.statuses.get(202, 0) - result.points)
    return lost


def section(results):
    """The queue part of the table: (heading, rows)."""
    queue = results.get("queue", {"status": NOT_AVAILABLE})
    if queue["status"] != "measured":
        reason = f"\n  ({queue['reason']})" if queue.get("reason") else ""
        return queue["status"] + reason, []
    sync = results["MariaDB"]
    drains = queue["drain"]
    heading = (
        f"queue mode on MariaDB, durable Redis (appendfsync always): burst worker wall time "
        f"{statistics.median(d.worker_seconds for d in drains):.1f} s (start-up included)"
    )
    sync_single = wrk_row("", sync[f"single {QUEUE_CONNECTIONS}"]).value
    ceiling = statistics.median(sync["executemany 2"])
    failed = sum(d.exit_code != 0 for d in drains)
    return heading, [
        wrk_row(f"202 accepted, {QUEUE_CONNECTIONS} conn.", queue["accepted"],
                ceiling_label=f"sync single {QUEUE_CONNECTIONS}", ceiling=sync_single,
                target=ACCEPT_TARGET),
        Row("drain, burst worker", statistics.median(d.rate for d in drains), "pts/s",
            ceiling_label="executemany 2 conn.", ceiling=ceiling, target=DRAIN_TARGET,
            errors=lost_points(queue["accepted"], drains) + failed),
    ]  # fmt: skip


def problem_lines(results):
    """What went wrong in queue mode, one line each (nothing when it was not available)."""
    queue = results.get("queue", {"status": NOT_AVAILABLE})
    if queue["status"] == NOT_AVAILABLE:
        return []
    if queue["status"] != "measured":
        return [f"  {queue['status']}"]
    lines = error_lines([("queue 202 accepted", queue["accepted"])])
    lost = lost_points(queue["accepted"], queue["drain"])
    if lost:
        lines.append(f"  queue drain: {lost} points answered 202 were never written")
    failed = [d.exit_code for d in queue["drain"] if d.exit_code != 0]
    if failed:
        lines.append(f"  queue drain: burst workers exited with {failed}")
    return lines
