"""Queue mode's loads in the ingest benchmark: a buffer filled to a number of single-point
entries, its drain by the ingest workers ``make worker`` starts (timed from the buffer's
drained-points count, which each batch raises as it is acknowledged after its COMMIT), and a
steady paced load of batches with the lag — the oldest buffered entry's age — sampled."""

import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rq import Queue

from app.core.timeutil import utcnow
from app.core.writes import Point
from app.infra.redis import connect
from app.ingest import queue_scripts
from app.ingest.queue_buffer import appended, buffer_for, encode, lease_ms, start_drainers
from tests.harness import ROOT

FLASK = Path(sys.executable).parent / "flask"
WORKER_COMMAND = [str(FLASK), "--app", "app", "jobs", "worker", "--queue", "ingest"]
FILL_PIPELINE = 1000
POLL_SECONDS = 0.01
LAG_SAMPLE_SECONDS = 0.1


@dataclass
class Drain:
    """One drain of a filled buffer: points, the seconds from the first drained point to the
    last, and from the workers' start to the last; ``missing``: points buffered before and not
    stored once after (negative: stored twice)."""

    points: int
    active_seconds: float
    with_startup_seconds: float
    missing: int = 0

    @property
    def rate(self):
        """Points per second from the first drained point to the last."""
        return self.points / self.active_seconds if self.active_seconds else 0.0

    @property
    def rate_with_startup(self):
        """Points per second counting the workers' start-up."""
        return self.points / self.with_startup_seconds if self.with_startup_seconds else 0.0

    def as_dict(self):
        """The raw figures, for --json."""
        return {**asdict(self), "rate": self.rate, "rate_with_startup": self.rate_with_startup}


def fill(settings, names, entries):
    """Top the buffer up to ``entries`` single-point entries (the door's own append, sent in
    pipelines); the bytes of Redis memory each took."""
    client = connect(settings["REDIS_URL"])
    buffer, append = buffer_for(client, settings), client.register_script(queue_scripts.APPEND)
    missing = entries - buffer.state()["entries"]
    before, now = client.info("memory")["used_memory"], utcnow()
    queue = Queue(settings["RQ_INGEST_QUEUE"], connection=client)
    for start in range(0, missing, FILL_PIPELINE):
        with client.pipeline(transaction=False) as pipe:
            for n in range(start, min(missing, start + FILL_PIPELINE)):
                payload = encode([Point(names[n % len(names)], "counter", 1.0, now)])
                append(*buffer.append_call(payload, 1, 10**12, lease_ms(settings)), client=pipe)
            for reply in pipe.execute():  # as the door: a slot taken is a drain job queued
                start_drainers(queue, appended(reply).started)
    used = client.info("memory")["used_memory"] - before
    client.close()
    return used / max(1, missing)


def buffer_points(settings):
    """Points in the buffer now."""
    client = connect(settings["REDIS_URL"])
    try:
        return buffer_for(client, settings).state()["points"]
    finally:
        client.close()


def start_workers(env, count, log):
    """``count`` ingest workers, as ``make worker`` starts them."""
    return [
        subprocess.Popen(WORKER_COMMAND, cwd=ROOT, env=env, stdout=log, stderr=log,
                         start_new_session=True)
        for _ in range(count)
    ]  # fmt: skip


def stop_workers(workers):
    """SIGTERM (RQ's warm shutdown) and wait."""
    for worker in workers:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
    for worker in workers:
        worker.wait(timeout=60)


def drain(env, settings, log, timeout):
    """Start the workers and time the buffer's drain; a Drain."""
    client = connect(settings["REDIS_URL"])
    buffer = buffer_for(client, settings)
    state = buffer.state()
    baseline, points = state["drained_points"], state["points"]
    began = time.perf_counter()
    workers = start_workers(env, settings["QUEUE_DRAINERS"], log)
    first = None
    try:
        while time.perf_counter() - began < timeout:
            drained = buffer.state()["drained_points"] - baseline
            if first is None and drained:
                first = time.perf_counter()
            if drained >= points:
                break
            time.sleep(POLL_SECONDS)
        last = time.perf_counter()
    finally:
        stop_workers(workers)
        client.close()
    drained = buffer_for(connect(settings["REDIS_URL"]), settings).state()["drained_points"]
    return Drain(drained - baseline, last - (first or last), last - began)


class PacedLoad:
    """POST one body ``rate`` times a second over keep-alive connections, on a fixed
    schedule (a late request goes at once), counting statuses."""

    def __init__(self, port, path, body, key, rate, threads=16):
        self.port, self.path, self.body, self.key = port, path, body, key
        self.interval = threads / rate
        self.threads = threads
        self.statuses, self.lock, self.stop = {}, threading.Lock(), threading.Event()

    def run(self, seconds):
        """Load for ``seconds``; the statuses seen."""
        start = time.perf_counter()
        offsets = [start + n * self.interval / self.threads for n in range(self.threads)]
        workers = [threading.Thread(target=self._client, args=(at,)) for at in offsets]
        for worker in workers:
            worker.start()
        time.sleep(seconds)
        self.stop.set()
        for worker in workers:
            worker.join()
        return dict(self.statuses)

    def _client(self, next_at):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"X-API-Key": self.key, "Content-Type": "application/json"}
        while not self.stop.is_set():
            time.sleep(max(0.0, next_at - time.perf_counter()))
            next_at += self.interval
            conn.request("POST", self.path, body=self.body, headers=headers)
            response = conn.getresponse()
            response.read()
            with self.lock:
                self.statuses[response.status] = self.statuses.get(response.status, 0) + 1
        conn.close()


def sample_lag(settings, stop, samples):
    """Append the buffer's lag (0 when empty) to ``samples`` every LAG_SAMPLE_SECONDS."""
    client = connect(settings["REDIS_URL"])
    buffer = buffer_for(client, settings)
    while not stop.wait(LAG_SAMPLE_SECONDS):
        samples.append(buffer.state()["oldest_seconds"] or 0.0)
    client.close()


def percentile(values, share):
    """The ``share`` (0–1) percentile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


@dataclass
class Steady:
    """A steady load: the rate asked, the points answered 202 per second, lag samples."""

    points_per_second_asked: float
    points_per_second_accepted: float
    statuses: dict
    lag_p50: float
    lag_p95: float
    lag_p99: float
    lag_max: float
    samples: int

    def as_dict(self):
        """The raw figures, for --json."""
        return asdict(self)


def steady(env, settings, server, body, points_per_body, key, rate, seconds, log):
    """``rate`` points/s in bodies of ``points_per_body`` for ``seconds`` with the workers
    running; a Steady."""
    workers = start_workers(env, settings["QUEUE_DRAINERS"], log)
    stop, samples = threading.Event(), []
    sampler = threading.Thread(target=sample_lag, args=(settings, stop, samples))
    try:
        deadline = time.monotonic() + 300  # start empty: the workers' start-up is not the lag
        while buffer_points(settings) and time.monotonic() < deadline:
            time.sleep(0.1)
        sampler.start()
        load = PacedLoad(server.port, "/api/metrics/batch", body, key, rate / points_per_body)
        statuses = load.run(seconds)
    finally:
        stop.set()
        if sampler.is_alive():
            sampler.join()
        stop_workers(workers)
    accepted = statuses.get(202, 0) * points_per_body / seconds
    lags = [percentile(samples, share) for share in (0.5, 0.95, 0.99, 1.0)]
    return Steady(rate, accepted, statuses, *lags, len(samples))
