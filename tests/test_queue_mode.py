"""INGEST_MODE=queue: 202 once the points are in a durable Redis, written by real RQ workers
exactly once — across a Redis restart, a repeated job and a worker killed mid-job."""

import os
import signal
import subprocess
import sys
import time

import pytest
from rq import SimpleWorker
from rq.registry import StartedJobRegistry
from sqlalchemy import text

from app import create_app
from app.config import ConfigError
from app.db import get_db
from app.db.migrate import migrate
from app.jobs import runtime
from app.redis import get_redis
from scripts.harness import ROOT, RedisServer
from tests.conftest import REDIS_SERVER_URL, new_key, stored_points

COUNTER = "/api/metrics/counter"
BATCH = "/api/metrics/batch"


@pytest.fixture
def durable_redis(tmp_path):
    """A Redis of the test's own that persists every write (appendfsync always)."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def queue_app(database_url, durable_redis, monkeypatch, tmp_path):
    """An app in queue mode; jobs run in this process read the same settings from the env."""
    env = {"DATABASE_URL": database_url, "REDIS_URL": durable_redis.url, "INGEST_MODE": "queue"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    app = create_app({"TESTING": True})
    if get_db(app).is_sqlite:
        migrate(get_db(app).write)
    yield app
    get_db(app).dispose()
    runtime.reset()


def drain(app):
    """Run a real RQ worker over the ingest queue until it is empty; how many jobs it ran."""
    connection = get_redis(app)
    queue = runtime.queue(app.config["RQ_INGEST_QUEUE"], connection)
    worker = SimpleWorker([queue], connection=connection)
    worker.work(burst=True)
    return worker.successful_job_count


def queued(app):
    return runtime.queue(app.config["RQ_INGEST_QUEUE"], get_redis(app)).count


def test_points_are_202_queued_then_written_by_a_worker(queue_app):
    client, auth = queue_app.test_client(), {"X-API-Key": new_key(queue_app)}
    response = client.post(COUNTER, json={"name": "q.c", "value": 2}, headers=auth)
    assert (response.status_code, response.get_json()) == (202, {"success": True, "queued": 1})
    assert (
        client.post(
            "/api/metrics/value", json={"name": "q.v", "value": 1.5}, headers=auth
        ).status_code
        == 202
    )
    batch = {
        "metrics": [{"name": "q.c", "type": "counter"}, {"name": "bad name", "type": "counter"}]
    }
    body = client.post(BATCH, json=batch, headers=auth).get_json()
    assert (body["queued"], body["accepted"], body["rejected"]) == (1, 1, 1)
    assert stored_points(queue_app, "q.c") == []  # nothing is written before a worker runs
    drain(queue_app)
    assert sorted(v for _, v in stored_points(queue_app, "q.c")) == [1.0, 2.0]
    assert [v for _, v in stored_points(queue_app, "q.v")] == [1.5]


def test_a_worker_keeps_no_raw_points_in_rollups_only_mode(queue_app, monkeypatch):
    """METRICS_RETENTION_DAYS=0 holds for queued points too: rollups, no raw point."""
    client, auth = queue_app.test_client(), {"X-API-Key": new_key(queue_app)}
    assert (
        client.post(COUNTER, json={"name": "q.only", "value": 3}, headers=auth).status_code == 202
    )
    monkeypatch.setenv("METRICS_RETENTION_DAYS", "0")  # the worker reads its own settings
    runtime.reset()
    drain(queue_app)
    assert stored_points(queue_app, "q.only") == []
    with get_db(queue_app).write.connect() as conn:
        minutes = conn.execute(
            text(
                "SELECT r.n, r.total FROM metric_rollups_minute r JOIN metrics m "
                "ON m.id = r.metric_id WHERE m.name = 'q.only'"
            )
        ).all()
    assert [(n, float(total)) for n, total in minutes] == [(1, 3.0)]


def test_a_known_metric_of_the_other_type_is_refused_at_the_door(queue_app):
    client, auth = queue_app.test_client(), {"X-API-Key": new_key(queue_app)}
    client.post(COUNTER, json={"name": "q.typed"}, headers=auth)
    drain(queue_app)
    response = client.post("/api/metrics/value", json={"name": "q.typed", "value": 1}, headers=auth)
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "METRIC_TYPE_MISMATCH"
    assert queued(queue_app) == 0


def test_a_deep_queue_is_written_in_few_transactions(queue_app):
    client, auth = queue_app.test_client(), {"X-API-Key": new_key(queue_app)}
    for n in range(60):
        client.post(COUNTER, json={"name": "q.deep", "value": n}, headers=auth)
    assert queued(queue_app) == 60
    jobs_run = drain(queue_app)
    assert jobs_run < 10, jobs_run  # the rest were coalesced into those jobs' transactions
    assert sorted(v for _, v in stored_points(queue_app, "q.deep")) == [float(n) for n in range(60)]
    assert queued(queue_app) == 0


def test_a_job_applied_twice_adds_nothing(queue_app):
    client, auth = queue_app.test_client(), {"X-API-Key": new_key(queue_app)}
    client.post(COUNTER, json={"name": "q.twice", "value": 3}, headers=auth)
    queue = runtime.queue(queue_app.config["RQ_INGEST_QUEUE"], get_redis(queue_app))
    job = queue.fetch_job(queue.get_job_ids()[0])
    job.perform()  # a worker killed after COMMIT, before RQ heard: the job runs again
    job.perform()
    assert [v for _, v in stored_points(queue_app, "q.twice")] == [3.0]


def test_a_202_survives_a_redis_restart(queue_app, durable_redis):
    client, auth = queue_app.test_client(), {"X-API-Key": new_key(queue_app)}
    assert client.post(COUNTER, json={"name": "q.restart"}, headers=auth).status_code == 202
    durable_redis.kill()
    durable_redis.start()
    drain(queue_app)
    assert len(stored_points(queue_app, "q.restart")) == 1


def test_idempotency_keys_are_reserved_with_the_enqueue(queue_app):
    client, auth = queue_app.test_client(), {"X-API-Key": new_key(queue_app)}
    headers = {**auth, "Idempotency-Key": "q-1"}
    first = client.post(COUNTER, json={"name": "q.idem", "value": 4}, headers=headers)
    again = client.post(COUNTER, json={"name": "q.idem", "value": 4}, headers=headers)
    other = client.post(COUNTER, json={"name": "q.idem", "value": 5}, headers=headers)
    assert (first.status_code, again.status_code, other.status_code) == (202, 202, 422)
    assert again.get_data() == first.get_data() and again.headers["Idempotent-Replayed"] == "true"
    assert queued(queue_app) == 1
    drain(queue_app)
    assert [v for _, v in stored_points(queue_app, "q.idem")] == [4.0]


def test_queue_mode_refuses_a_redis_that_may_lose_writes(database_url):
    shared = f"{REDIS_SERVER_URL}/0"  # this machine's shared Redis keeps nothing on disk
    settings = {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "INGEST_MODE": "queue",
        "REDIS_URL": shared,
    }
    with pytest.raises(ConfigError, match="appendonly"):
        create_app(settings)
    app = create_app({**settings, "QUEUE_ALLOW_VOLATILE_REDIS": True})  # loudly allowed
    get_db(app).dispose()


def test_queue_mode_needs_redis(database_url):
    with pytest.raises(ConfigError, match="REDIS_URL"):
        create_app({"TESTING": True, "DATABASE_URL": database_url, "INGEST_MODE": "queue"})


def start_worker(env):
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "jobs", "worker", "--queue", "ingest"],
        cwd=ROOT,
        env={**os.environ, **env, "LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_worker_killed_mid_job_loses_nothing_and_doubles_nothing(
    queue_app, database_url, durable_redis
):
    key = new_key(queue_app)
    client = queue_app.test_client()
    for n in range(400):
        body = {
            "metrics": [{"name": "q.kill", "type": "value", "value": n * 10 + i} for i in range(10)]
        }
        assert client.post(BATCH, json=body, headers={"X-API-Key": key}).status_code == 202
    env = {"DATABASE_URL": database_url, "REDIS_URL": durable_redis.url, "INGEST_MODE": "queue"}
    worker = start_worker(env)
    deadline = time.monotonic() + 60
    while queued(queue_app) > 300 and time.monotonic() < deadline:
        time.sleep(0.005)
    worker.send_signal(signal.SIGKILL)  # mid-drain: jobs started, claimed, half-written
    worker.wait()
    connection = get_redis(queue_app)
    queue = runtime.queue(queue_app.config["RQ_INGEST_QUEUE"], connection)
    # What RQ does on its own once the dead worker's heartbeat lapses: retry abandoned jobs.
    StartedJobRegistry(queue=queue).cleanup(timestamp=time.time() + 3600)
    drain(queue_app)
    values = sorted(v for _, v in stored_points(queue_app, "q.kill"))
    assert values == [float(v) for v in range(4000)]


def test_ready_shows_the_queue(queue_app):
    client, auth = queue_app.test_client(), {"X-API-Key": new_key(queue_app)}
    client.post(COUNTER, json={"name": "q.ready"}, headers=auth)
    body = client.get("/ready").get_json()
    assert body["checks"] == {"database": "ok", "redis": "ok"}
    assert body["queue"]["name"] == "ingest" and body["queue"]["queued"] == 1
    assert body["queue"]["oldest_seconds"] >= 0 and body["queue"]["failed"] == 0
