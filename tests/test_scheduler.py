"""Maintenance on RQ: rq-scheduler's entries registered once however often the scheduler
starts, real workers running the jobs, a failing job retried into the failed registry."""

import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from rq import SimpleWorker
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from rq_scheduler import Scheduler

from app import create_app, shutdown
from app.core.timeutil import isoformat_z, utcnow
from app.db import get_store, run_read, runs
from app.db.migrate import migrate
from app.infra.redis import connect
from app.jobs import maintenance, runtime, schedule
from tests.harness import ROOT, TcpProxy, free_port
from tests.helpers import new_key
from tests.test_alert_evaluation import Receiver

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning:rq_scheduler")


@pytest.fixture
def rq_env(database_url, redis_url, monkeypatch):
    """Settings for a deployment whose maintenance runs on RQ; also this process's env."""
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "MAINTENANCE_RUNNER": "rq"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    app = create_app({"TESTING": True})
    if get_store(app).sql.NAME == "sqlite":
        migrate(get_store(app).write)
    yield env, app
    shutdown(app)
    runtime.reset()


def flask(env, *args):
    """Start ``flask --app app ARGS`` with ``env``."""
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=ROOT,
        env={**os.environ, **env, "LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def finish(process, timeout=120):
    """Its exit code and the end of what it wrote to stderr."""
    _, err = process.communicate(timeout=timeout)
    return process.returncode, err.decode()[-3000:]


def entry_ids(redis_url):
    return sorted(job.id for job in Scheduler(connection=connect(redis_url)).get_jobs())


def test_the_schedule_is_registered_once_however_often_the_scheduler_starts(rq_env):
    env, _ = rq_env
    for _ in range(2):  # two restarts…
        code, err = finish(flask(env, "jobs", "scheduler", "--register-only"))
        assert code == 0 and "Warning" not in err
    racing = [flask(env, "jobs", "scheduler", "--register-only") for _ in range(2)]  # …and a race
    assert [finish(p)[0] for p in racing] == [0, 0]
    assert entry_ids(env["REDIS_URL"]) == [
        "glowing-fiesta.maintenance.alerts",
        "glowing-fiesta.maintenance.partitions",
        "glowing-fiesta.maintenance.retention",
    ]


def test_a_worker_runs_what_the_scheduler_enqueues(rq_env):
    env, app = rq_env
    scheduler = schedule.scheduler(connect(env["REDIS_URL"]), app.config)
    schedule.register(scheduler, app.config)
    for entry in scheduler.get_jobs():
        scheduler.enqueue_job(entry)  # what rq-scheduler does when an entry's time comes
    code, err = finish(flask(env, "jobs", "worker", "--queue", "maintenance", "--burst"))
    assert code == 0, err
    last = run_read(get_store(app).write, runs.last_runs)
    assert set(last) == {"partitions", "retention"}
    assert all(record["last_success_at"] for record in last.values())


def test_a_failing_job_is_retried_then_kept_in_the_failed_registry(rq_env, monkeypatch):
    env, app = rq_env
    monkeypatch.setenv("MAINTENANCE_RETRY_SECONDS", "0,0")
    monkeypatch.setenv("DATABASE_URL", f"mysql+pymysql://root@127.0.0.1:{free_port()}/none")
    runtime.reset()  # the worker's settings now point at a database that is not there
    connection = connect(env["REDIS_URL"])
    queue = runtime.queue(app.config["RQ_MAINTENANCE_QUEUE"], connection)
    queue.enqueue(maintenance.trigger, "retention")
    SimpleWorker([queue], connection=connection).work(burst=True)
    failed = FailedJobRegistry(queue=queue)
    assert failed.count == 1
    job = queue.fetch_job(failed.get_job_ids()[0])
    assert job.func_name == "app.jobs.maintenance.apply_retention"
    assert job.retries_left == 0  # tried three times in all


def poll(condition, seconds=30):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_retry_after_a_pause_is_run_by_the_workers_own_scheduler(mysql_url, redis_url):
    """A retention run fails while the database is cut off; RQ parks its retry for a second;
    the worker's scheduler (not rq-scheduler) brings it back once the database is there."""
    host, port = mysql_url.split("@", 1)[1].split("/", 1)[0].split(":")
    proxy = TcpProxy(host, int(port))  # not listening yet: the database is unreachable
    database = mysql_url.rsplit("/", 1)[1]
    env = {
        "DATABASE_URL": f"mysql+pymysql://root@127.0.0.1:{proxy.port}/{database}",
        "REDIS_URL": redis_url,
        "MAINTENANCE_RETRY_SECONDS": "1",
    }
    connection = connect(redis_url)
    queue = runtime.queue("maintenance", connection)
    retry = maintenance.retry_policy({"MAINTENANCE_RETRY_SECONDS": (1,)})
    job = queue.enqueue(maintenance.apply_retention, retry=retry)
    worker = flask(env, "jobs", "worker", "--queue", "maintenance")
    try:
        poll(lambda: job.id in ScheduledJobRegistry(queue=queue).get_job_ids())
        proxy.restore()
        poll(lambda: queue.fetch_job(job.id).get_status() == "finished")
    finally:
        worker.terminate()
        finish(worker)
        proxy.cut()
    assert queue.fetch_job(job.id).retries_left == 0


def test_two_schedulers_and_two_workers_send_one_notice_per_transition(rq_env, monkeypatch):
    """The alerts' entry enqueued twice for one minute (as two schedulers would) and run by two
    real workers at once: the alert is judged once and its receiver gets one notice."""
    env, app = rq_env
    env = {**env, "ALERTS_ALLOW_PRIVATE_TARGETS": "true"}
    monkeypatch.setenv("ALERTS_ALLOW_PRIVATE_TARGETS", "true")
    receiver = Receiver()
    try:
        app.config["ALERTS_ALLOW_PRIVATE_TARGETS"] = True
        client, auth = app.test_client(), {"X-API-Key": new_key(app)}
        moment = isoformat_z(utcnow() - timedelta(minutes=2))
        batch = {"metrics": [{"name": "errors", "type": "counter", "recorded_at": moment}] * 3}
        assert client.post("/api/metrics/batch", json=batch, headers=auth).status_code == 201
        rule = {"metric": "errors", "kind": "value", "window": "5m", "condition": ">",
                "threshold": 2, "notify": [f"webhook:{receiver.url}"]}  # fmt: skip
        alert = client.post("/api/alerts", json=rule, headers=auth).get_json()
        scheduler = schedule.scheduler(connect(env["REDIS_URL"]), app.config)
        schedule.register(scheduler, app.config)
        (entry,) = [job for job in scheduler.get_jobs() if job.id == schedule.ALERTS_ENTRY]
        scheduler.enqueue_job(entry)
        scheduler.enqueue_job(entry)
        workers = [flask(env, "jobs", "worker", "--queue", "maintenance", "--burst")
                   for _ in range(2)]  # fmt: skip
        for worker in workers:
            code, err = finish(worker)
            assert code == 0, err
        assert len(receiver.notices(alert["secret"])) == 1
        assert receiver.notices(alert["secret"])[0]["state"] == "firing"
        answer = client.get(f"/api/alerts/{alert['id']}", headers=auth).get_json()
        assert answer["state"] == "firing"
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
