"""INGEST_MODE=queue at the door: refusals decided before the 202, the append with its
Idempotency-Key reservation and its bound, Redis outages as 503, what /ready, /metrics and
`flask queue` show, failed points and jobs of the previous queue design. The drains
themselves (kills, reclaims, concurrent drainers) are in test_queue_drain.py."""

import json
import time
import urllib.parse

import pytest
from rq import SimpleWorker

from app import create_app, shutdown
from app.config import ConfigError
from app.core.timeutil import utcnow
from app.db import get_store, metrics, run_in_transaction
from app.db.migrate import migrate
from app.infra.redis import connect, get_redis
from app.ingest.queue_buffer import buffer_state
from app.jobs import drain, runtime, schedule
from tests.helpers import REDIS_SERVER_URL, new_key, stored_metric, stored_points

COUNTER = "/api/metrics/counter"
VALUE = "/api/metrics/value"
BATCH = "/api/metrics/batch"


def run_drains(app):
    """Start drain jobs where points wait and run them with a real RQ worker until done."""
    connection = get_redis(app)
    drain.arm(connection, app.config)
    queue = runtime.queue(app.config["RQ_INGEST_QUEUE"], connection)
    SimpleWorker([queue], connection=connection).work(burst=True)


def buffered(app):
    return buffer_state(get_redis(app), app.config)


@pytest.fixture
def client(queue_app):
    return queue_app.test_client()


@pytest.fixture
def auth(queue_app):
    return {"X-API-Key": new_key(queue_app)}


def test_points_are_202_queued_then_written_by_a_drain(queue_app, client, auth):
    response = client.post(COUNTER, json={"name": "q.c", "value": 2}, headers=auth)
    assert (response.status_code, response.get_json()) == (202, {"success": True, "queued": 1})
    assert client.post(VALUE, json={"name": "q.v", "value": 1.5}, headers=auth).status_code == 202
    batch = {"metrics": [{"name": "q.c", "type": "counter"}, {"name": "bad name"}]}
    body = client.post(BATCH, json=batch, headers=auth).get_json()
    assert (body["queued"], body["accepted"], body["rejected"]) == (1, 1, 1)
    assert stored_points(queue_app, "q.c") == []  # nothing is written before a drain runs
    assert (buffered(queue_app)["points"], buffered(queue_app)["entries"]) == (3, 3)
    run_drains(queue_app)
    assert sorted(v for _, v in stored_points(queue_app, "q.c")) == [1.0, 2.0]
    assert [v for _, v in stored_points(queue_app, "q.v")] == [1.5]
    state = buffered(queue_app)
    assert (state["points"], state["entries"], state["drained_points"]) == (0, 0, 3)


def test_new_names_are_created_at_the_door_so_a_clash_is_refused_before_any_drain(
    queue_app, client, auth
):
    assert client.post(COUNTER, json={"name": "q.new"}, headers=auth).status_code == 202
    assert stored_metric(queue_app, "q.new") == ("q.new", "counter")  # created at the door
    response = client.post(VALUE, json={"name": "q.new", "value": 1}, headers=auth)
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "METRIC_TYPE_MISMATCH"
    items = [{"name": "q.new", "type": "value", "value": 1}, {"name": "q.new2", "type": "value",
             "value": 2}, {"name": "q.new2", "type": "counter"}]  # fmt: skip
    body = client.post(BATCH, json={"metrics": items}, headers=auth).get_json()
    assert (body["queued"], [e["index"] for e in body["errors"]]) == (1, [0, 2])
    assert {e["code"] for e in body["errors"]} == {"METRIC_TYPE_MISMATCH"}
    assert buffered(queue_app)["points"] == 2


def test_a_rollups_only_drain_keeps_no_raw_points(queue_app, client, auth, monkeypatch):
    """METRICS_RETENTION_DAYS=0 holds for queued points too: rollups, no raw point."""
    response = client.post(COUNTER, json={"name": "q.only", "value": 3}, headers=auth)
    assert response.status_code == 202
    monkeypatch.setenv("METRICS_RETENTION_DAYS", "0")  # the drain reads its own settings
    runtime.reset()
    run_drains(queue_app)
    assert stored_points(queue_app, "q.only") == []
    assert buffered(queue_app)["drained_points"] == 1
    with get_store(queue_app).write.connect() as conn:
        minutes = conn.exec_driver_sql(
            "SELECT r.n FROM metric_rollups_minute r JOIN metrics m ON m.id = r.metric_id "
            "WHERE m.name = 'q.only'"
        ).all()
    assert [tuple(row) for row in minutes] == [(1,)]


def test_idempotency_keys_are_reserved_with_the_append(queue_app, client, auth):
    headers = {**auth, "Idempotency-Key": "q-1"}
    first = client.post(COUNTER, json={"name": "q.idem", "value": 4}, headers=headers)
    again = client.post(COUNTER, json={"name": "q.idem", "value": 4}, headers=headers)
    other = client.post(COUNTER, json={"name": "q.idem", "value": 5}, headers=headers)
    assert (first.status_code, again.status_code, other.status_code) == (202, 202, 422)
    assert again.get_data() == first.get_data() and again.headers["Idempotent-Replayed"] == "true"
    assert buffered(queue_app)["points"] == 1
    run_drains(queue_app)
    assert [v for _, v in stored_points(queue_app, "q.idem")] == [4.0]


def test_tagged_points_queue_with_their_series_decided_at_the_door(queue_env, monkeypatch):
    monkeypatch.setenv("METRICS_MAX_SERIES_PER_METRIC", "2")
    app = create_app({"TESTING": True})
    if get_store(app).sql.NAME == "sqlite":
        migrate(get_store(app).write)
    client, auth = app.test_client(), {"X-API-Key": new_key(app)}
    items = [
        {"name": "q.t", "type": "counter", "value": 1, "tags": {"host": "a"}},
        {"name": "q.t", "type": "counter", "value": 2, "tags": {"host": "b"}},
        {"name": "q.t", "type": "counter", "value": 4, "tags": {"host": "c"}},  # a third series
        {"name": "q.t", "type": "counter", "value": 8, "tags": {"host": "a"}},
        {"name": "q.t", "type": "counter", "value": 1, "tags": {"host": "bad,value"}},
    ]
    body = client.post(BATCH, json={"metrics": items}, headers=auth).get_json()
    assert (body["queued"], body["accepted"]) == (3, 3)
    assert [(e["index"], e["code"]) for e in body["errors"]] == [
        (2, "SERIES_LIMIT_EXCEEDED"), (4, "VALIDATION_ERROR")]  # fmt: skip
    form = client.post(COUNTER, data={"name": "q.t", "value": "16", "tags": "host:b"}, headers=auth)
    assert form.status_code == 202
    run_drains(app)
    answer = client.get("/api/metrics/q.t?window=1d&group_by=host", headers=auth).get_json()
    totals = {s["tags"]["host"]: sum(d["value"] for d in s["data"]) for s in answer["series"]}
    assert totals == {"a": 9, "b": 18}
    shutdown(app)


@pytest.mark.parametrize("database_url", ["mysql"], indirect=True)  # the cache is the same
def test_a_deleted_name_answers_as_the_new_metric_within_5_s_however_often_it_is_used(
    queue_app, client, auth
):
    assert client.post(COUNTER, json={"name": "q.gone"}, headers=auth).status_code == 202
    run_drains(queue_app)
    get_store(queue_app).delete_metric(1, "q.gone", lambda metric_id: None)
    run_in_transaction(
        get_store(queue_app).write, metrics.resolve, 1, {"q.gone": "value"}, utcnow()
    )
    started, status = time.monotonic(), None
    while status != 202 and time.monotonic() - started < 6:
        status = client.post(VALUE, json={"name": "q.gone", "value": 1}, headers=auth).status_code
        time.sleep(0.05)  # a dashboard-like poll: a cache refreshed on hits would never expire
    assert status == 202 and time.monotonic() - started < 5


def test_a_full_buffer_is_503_with_retry_after_and_takes_nothing(queue_app, client, auth):
    queue_app.config["QUEUE_MAX_POINTS"] = 3
    batch = {"metrics": [{"name": "q.full", "type": "counter"}] * 2}
    assert client.post(BATCH, json=batch, headers=auth).status_code == 202
    headers = {**auth, "Idempotency-Key": "full-1"}
    refused = client.post(BATCH, json=batch, headers=headers)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
    assert refused.get_json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert buffered(queue_app)["points"] == 2
    run_drains(queue_app)
    assert client.post(BATCH, json=batch, headers=headers).status_code == 202  # not reserved


def ez_get(client, key, **params):
    return client.get("/ez?" + urllib.parse.urlencode({"ezkey": key, **params}))


def test_redis_down_is_503_with_retry_after_on_every_write_and_reserves_nothing(
    queue_app, client, auth, durable_redis
):
    key = auth["X-API-Key"]
    assert client.post(COUNTER, json={"name": "q.out"}, headers=auth).status_code == 202
    durable_redis.kill()
    idem = {**auth, "Idempotency-Key": "out-1"}
    answers = [
        client.post(COUNTER, json={"name": "q.out"}, headers=auth),
        client.post(COUNTER, json={"name": "q.out"}, headers=idem),
        client.post(VALUE, json={"name": "q.out.v", "value": 1}, headers=auth),
        client.post(BATCH, json={"metrics": [{"name": "q.out", "type": "counter"}]}, headers=idem),
        client.post("/api/metrics/batch", data="{", headers=idem),  # refused: replay looked up
        ez_get(client, key, stat="q.out", count=1),
        client.post("/ez", data=json.dumps({"ezkey": key, "data": [{"stat": "q.out"}]})),
    ]
    assert [a.status_code for a in answers] == [503] * len(answers)
    assert all(a.headers["Retry-After"] == "5" for a in answers)
    durable_redis.start()
    again = client.post(COUNTER, json={"name": "q.out"}, headers=idem)
    assert again.status_code == 202 and "Idempotent-Replayed" not in again.headers
    run_drains(queue_app)
    assert len(stored_points(queue_app, "q.out")) == 2


def test_a_point_refused_after_the_door_is_kept_shown_and_requeued(queue_app, client, auth):
    response = client.post(COUNTER, json={"name": "q.clash", "value": 7}, headers=auth)
    assert response.status_code == 202
    db = get_store(queue_app)
    db.delete_metric(1, "q.clash", lambda metric_id: None)
    run_in_transaction(db.write, metrics.resolve, 1, {"q.clash": "value"}, utcnow())
    run_drains(queue_app)  # the point's metric has the other type now
    state = buffered(queue_app)
    assert (state["points"], state["failed_points"], state["drained_points"]) == (0, 1, 0)
    runner = queue_app.test_cli_runner()
    status = runner.invoke(args=["queue", "status"]).output.splitlines()
    columns, values = status[-2].split("\t"), status[-1].split("\t")
    assert dict(zip(columns, values, strict=True))["failed_points"] == "1"
    assert client.get("/ready").get_json()["queue"]["failed_points"] == 1
    db.delete_metric(1, "q.clash", lambda metric_id: None)  # the fix
    assert "1 failed point(s) back" in runner.invoke(args=["queue", "requeue"]).output
    run_drains(queue_app)
    assert [v for _, v in stored_points(queue_app, "q.clash")] == [7.0]
    assert stored_metric(queue_app, "q.clash") == ("q.clash", "counter")
    assert buffered(queue_app)["failed_points"] == 0


def test_ready_and_metrics_show_the_buffer(queue_app, client, auth):
    client.post(COUNTER, json={"name": "q.ready"}, headers=auth)
    body = client.get("/ready").get_json()
    assert body["checks"] == {"database": "ok", "redis": "ok"}
    queue = body["queue"]
    assert (queue["name"], queue["points"], queue["entries"], queue["pending_entries"]) == (
        "ingest", 1, 1, 0,
    )  # fmt: skip
    assert queue["oldest_seconds"] >= 0 and queue["drainers"] == 2  # taken by the append
    assert queue["failed_drains"] == 0 and set(queue["jobs"]) >= {"queued", "failed"}
    text = client.get("/metrics").get_data(as_text=True)
    assert 'gf_queue_buffered_points{queue="ingest"} 1.0' in text
    assert 'gf_queue_drained_points_total{queue="ingest"} 0.0' in text
    assert "gf_queue_lag_seconds" in text and "gf_queue_reclaimed_entries_total" in text


def test_jobs_of_the_previous_design_are_applied_once(queue_app):
    stamp = 1_767_312_000_000_000  # 2026-01-02, recent enough for the rollups' tiers
    queue = runtime.queue(queue_app.config["RQ_INGEST_QUEUE"], get_redis(queue_app))
    job = queue.enqueue("app.jobs.ingest.apply_points", [["q.old", "counter", 3.0, stamp]])
    SimpleWorker([queue], connection=get_redis(queue_app)).work(burst=True)
    job.perform()  # run again (a worker killed before RQ heard): appends nothing
    run_drains(queue_app)
    assert [v for _, v in stored_points(queue_app, "q.old")] == [3.0]


def test_the_scheduler_starts_drains_in_queue_mode_only(queue_app):
    assert schedule.DRAINERS_ENTRY in schedule.entries(queue_app.config)
    sync = {**queue_app.config, "INGEST_MODE": "sync"}
    assert schedule.DRAINERS_ENTRY not in schedule.entries(sync)


def test_queue_mode_refuses_a_redis_that_may_lose_writes(database_url, durable_redis):
    settings = {"TESTING": True, "DATABASE_URL": database_url, "INGEST_MODE": "queue"}
    shared = f"{REDIS_SERVER_URL}/0"  # this machine's shared Redis keeps nothing on disk
    with pytest.raises(ConfigError, match="appendonly yes.*QUEUE_ALLOW_VOLATILE_REDIS"):
        create_app({**settings, "REDIS_URL": shared})
    allowed = create_app({**settings, "REDIS_URL": shared, "QUEUE_ALLOW_VOLATILE_REDIS": True})
    shutdown(allowed)
    connect(durable_redis.url).config_set("appendfsync", "everysec")  # a second may be lost
    with pytest.raises(ConfigError, match="appendfsync everysec"):
        create_app({**settings, "REDIS_URL": durable_redis.url})


def test_queue_mode_needs_redis(database_url):
    with pytest.raises(ConfigError, match="REDIS_URL"):
        create_app({"TESTING": True, "DATABASE_URL": database_url, "INGEST_MODE": "queue"})
