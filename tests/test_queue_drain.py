"""Queue mode's drains on MariaDB: every 202'd point stored exactly once whatever dies when —
a drain killed before its commit, after it and before the acknowledgement, a real worker
process killed mid-drain (the probe's scenario), Redis restarted before the drain, two
workers draining at once."""

import os
import signal
import subprocess
import sys
import time

import pytest
from rq import SimpleWorker

from app.db import points_sql
from app.infra.redis import get_redis
from app.ingest.queue_buffer import Buffer, buffer_state
from app.jobs import drain, runtime
from tests.harness import ROOT
from tests.helpers import clear_mysql, new_key, stored_points

COUNTER = "/api/metrics/counter"
BATCH = "/api/metrics/batch"
CLAIM_IDLE = 1  # QUEUE_CLAIM_IDLE_SECONDS in the tests (conftest.QUEUE_TEST_SETTINGS)


@pytest.fixture
def database_url(mysql_url):
    """MariaDB only: worker processes and kills are about the production setup."""
    clear_mysql(mysql_url)
    return mysql_url


class Killed(BaseException):
    """Stands for SIGKILL: nothing of the job's own handles it."""


def post_counters(app, name, count):
    client, auth = app.test_client(), {"X-API-Key": new_key(app, rate_limit=100_000)}
    for n in range(count):
        response = client.post(COUNTER, json={"name": name, "value": n}, headers=auth)
        assert response.status_code == 202


def post_batches(app, name, batches, size):
    client, auth = app.test_client(), {"X-API-Key": new_key(app, rate_limit=100_000)}
    for b in range(batches):
        items = [{"name": name, "type": "value", "value": b * size + i} for i in range(size)]
        response = client.post(BATCH, json={"metrics": items}, headers=auth)
        assert response.status_code == 202


def stored_values(app, name):
    return sorted(v for _, v in stored_points(app, name))


def run_drains(app):
    connection = get_redis(app)
    drain.arm(connection, app.config)
    queue = runtime.queue(app.config["RQ_INGEST_QUEUE"], connection)
    SimpleWorker([queue], connection=connection).work(burst=True)


def drain_until_empty(app, within):
    """Run drains (as a live worker's watch would) until the buffer is empty; seconds taken."""
    started = time.monotonic()
    while buffered(app)["points"] and time.monotonic() - started < within:
        run_drains(app)
        time.sleep(0.05)
    return time.monotonic() - started


def buffered(app):
    return buffer_state(get_redis(app), app.config)


def take_drain_job(app):
    """The first drain job the appends queued, off the queue (as a worker takes it)."""
    queue = runtime.queue(app.config["RQ_INGEST_QUEUE"], get_redis(app))
    job = queue.jobs[0]
    queue.remove(job)
    return job


def kill_drain(app, monkeypatch, where):
    """Run one drain job in this process and 'kill' it at ``where``."""

    def dies(*args, **kwargs):
        raise Killed(where)

    if where == "after read":
        monkeypatch.setattr(drain, "_store", dies)
    elif where == "before commit":
        real = points_sql.write_requests
        monkeypatch.setattr(
            points_sql, "write_requests", lambda *a: (real(*a), dies())
        )  # inside the transaction: rolled back as a dropped connection would be
    else:
        monkeypatch.setattr(Buffer, "ack", dies)
    job = take_drain_job(app)
    with pytest.raises(Killed):
        drain.drain(*job.args)
    monkeypatch.undo()


@pytest.mark.parametrize("where", ["after read", "before commit", "after commit"])
def test_a_drain_killed_anywhere_stores_each_point_once_after_the_claim_time(
    queue_app, monkeypatch, where
):
    post_batches(queue_app, "q.kill", 20, 10)
    queue_app.config["QUEUE_DRAIN_BATCH"] = 50
    monkeypatch.setenv("QUEUE_DRAIN_BATCH", "50")
    runtime.reset()
    kill_drain(queue_app, monkeypatch, where)
    committed = len(stored_points(queue_app, "q.kill"))
    assert committed == (50 if where == "after commit" else 0)
    assert buffered(queue_app)["pending_entries"] == 5
    took = drain_until_empty(queue_app, within=CLAIM_IDLE + 10)
    assert stored_values(queue_app, "q.kill") == [float(v) for v in range(200)]
    assert took < CLAIM_IDLE + 5
    state = buffered(queue_app)
    assert (state["points"], state["reclaimed_entries"], state["drained_points"]) == (0, 5, 200)


def test_a_batch_that_keeps_failing_ends_in_the_failed_points(queue_app, monkeypatch):
    post_counters(queue_app, "q.poison", 3)
    monkeypatch.setattr(drain, "MAX_DELIVERIES", 2)

    def broken(*args):
        raise ValueError("a bug")

    monkeypatch.setattr(points_sql, "write_requests", broken)
    took = drain_until_empty(queue_app, within=CLAIM_IDLE + 10)  # tried, reclaimed, given up
    state = buffered(queue_app)
    assert (state["failed_points"], state["failed_drains"], state["drained_points"]) == (3, 2, 0)
    assert CLAIM_IDLE <= took < CLAIM_IDLE + 5
    monkeypatch.undo()
    runner = queue_app.test_cli_runner()
    assert "3 failed point(s) back" in runner.invoke(args=["queue", "requeue"]).output
    drain_until_empty(queue_app, within=5)
    assert stored_values(queue_app, "q.poison") == [0.0, 1.0, 2.0]


def test_a_202_survives_a_redis_restart_before_the_drain(queue_app, durable_redis):
    post_counters(queue_app, "q.restart", 20)
    durable_redis.kill()  # SIGKILL: only the append-only file is left
    durable_redis.start()
    run_drains(queue_app)
    assert stored_values(queue_app, "q.restart") == [float(v) for v in range(20)]


def start_worker(env, log):
    """``flask jobs worker --queue ingest`` in its own process group (with RQ's scheduler)."""
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "jobs", "worker", "--queue", "ingest"],
        cwd=ROOT,
        env={**os.environ, **env, "LOG_LEVEL": "WARNING"},
        stdout=log,
        stderr=log,
        start_new_session=True,
    )


def kill(worker):
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()


def poll(condition, within, every=0.01):
    deadline = time.monotonic() + within
    while not condition() and time.monotonic() < deadline:
        time.sleep(every)
    return condition()


def test_a_worker_killed_mid_drain_loses_nothing_and_doubles_nothing(
    queue_app, queue_env, tmp_path
):
    """The probe: 2,000 single counters answered 202, the worker kill -9'd mid-drain and
    restarted: all 2,000 stored exactly once within QUEUE_CLAIM_IDLE_SECONDS and a few
    seconds, and `flask queue status` and /ready show them pending until then."""
    post_counters(queue_app, "q.probe", 2000)
    env = {**queue_env, "QUEUE_DRAIN_BATCH": "40"}
    with open(tmp_path / "worker.log", "ab") as log:
        worker = start_worker(env, log)
        try:
            assert poll(lambda: len(stored_points(queue_app, "q.probe")) >= 40, within=30)
        finally:
            kill(worker)
        stored = len(stored_points(queue_app, "q.probe"))
        state = queue_app.test_client().get("/ready").get_json()["queue"]
        status = queue_app.test_cli_runner().invoke(args=["queue", "status"]).output
        # a batch committed and not yet acknowledged is still buffered: at least the rest
        assert 2000 - stored > 0 and state["points"] >= 2000 - stored
        assert status.splitlines()[-1].split("\t")[1] == str(state["points"])
        restarted = time.monotonic()
        worker = start_worker(env, log)
        try:
            done = poll(lambda: len(stored_points(queue_app, "q.probe")) >= 2000, within=30)
            took = time.monotonic() - restarted
        finally:
            worker.terminate()
            worker.wait(timeout=30)
    assert done and stored_values(queue_app, "q.probe") == [float(v) for v in range(2000)]
    assert took < CLAIM_IDLE + 8, took
    assert_quiet(tmp_path / "worker.log")
    assert queue_app.test_client().get("/ready").get_json()["queue"]["points"] == 0


def test_two_workers_draining_at_once_store_nothing_twice(queue_app, queue_env, tmp_path):
    post_batches(queue_app, "q.pair", 100, 30)
    env = {**queue_env, "QUEUE_DRAIN_BATCH": "100"}
    with open(tmp_path / "workers.log", "ab") as log:
        workers = [start_worker(env, log) for _ in range(2)]
        try:
            assert poll(lambda: len(stored_points(queue_app, "q.pair")) >= 3000, within=60)
            state = buffered(queue_app)
        finally:
            for worker in workers:
                worker.terminate()
                worker.wait(timeout=30)
    assert stored_values(queue_app, "q.pair") == [float(v) for v in range(3000)]
    assert state["points"] == 0 and state["drained_points"] == 3000
    assert_quiet(tmp_path / "workers.log")


def assert_quiet(log_path):
    """The workers logged no error (they log at WARNING and above in the tests)."""
    text = log_path.read_text()
    assert "Traceback" not in text and '"level": "ERROR"' not in text, text[-3000:]
