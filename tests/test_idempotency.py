"""Idempotency-Key: a retried POST is applied at most once per API key within 24 hours."""

import sqlite3
import threading
from datetime import timedelta

import pymysql
import pytest
from sqlalchemy import select

from app.core.timeutil import isoformat_z, utcnow
from app.db import get_store, receipts, run_in_transaction
from app.db.schema import idempotency_keys
from tests.clients import Session
from tests.helpers import new_key, on_clickhouse, stored_points

pytestmark = [pytest.mark.points, pytest.mark.points_mysql]

COUNTER = "/api/metrics/counter"
BATCH = "/api/metrics/batch"


def post(client, path, body, auth, key):
    return client.post(path, json=body, headers={**auth, "Idempotency-Key": key})


def test_a_repeated_request_is_applied_once_and_answered_the_same(client, app, auth):
    first = post(client, COUNTER, {"name": "idem", "value": 5}, auth, "order-1")
    again = post(client, COUNTER, {"name": "idem", "value": 5}, auth, "order-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.get_data() == first.get_data()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert [v for _, v in stored_points(app, "idem")] == [5.0]


def test_a_tagged_request_is_applied_once_and_its_tags_are_part_of_it(client, app, auth):
    body = {"name": "idem.t", "value": 2, "tags": {"host": "a", "dc": "x"}}
    first = post(client, COUNTER, body, auth, "tagged")
    again = post(client, COUNTER, body, auth, "tagged")
    assert (first.status_code, again.headers.get("Idempotent-Replayed")) == (201, "true")
    other = post(client, COUNTER, {**body, "tags": {"host": "b", "dc": "x"}}, auth, "tagged")
    assert other.get_json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    grouped = client.get("/api/metrics/idem.t?group_by=host&window=1d", headers=auth).get_json()
    totals = {s["tags"]["host"]: sum(d["value"] for d in s["data"]) for s in grouped["series"]}
    assert totals == {"a": 2}


def test_the_same_key_with_another_request_is_422(client, app, auth):
    assert post(client, COUNTER, {"name": "idem", "value": 5}, auth, "k").status_code == 201
    for path, body in (
        (COUNTER, {"name": "idem", "value": 6}),
        ("/api/metrics/value", {"name": "idem", "value": 5}),
        (COUNTER, {"name": "idem", "value": 5, "tags": {"host": "a"}}),  # tags are the request
    ):
        response = post(client, path, body, auth, "k")
        assert response.status_code == 422
        assert response.get_json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert [v for _, v in stored_points(app, "idem")] == [5.0]


def test_keys_are_separate_per_api_key(client, app, auth):
    other = {"X-API-Key": new_key(app, "other")}
    assert post(client, COUNTER, {"name": "idem"}, auth, "shared").status_code == 201
    response = post(client, COUNTER, {"name": "idem"}, other, "shared")
    assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers
    assert len(stored_points(app, "idem")) == 2


def test_a_batch_replay_repeats_its_item_errors(client, app, auth):
    body = {
        "metrics": [{"name": "idem.b", "type": "counter"}, {"name": "bad name", "type": "counter"}]
    }
    first = post(client, BATCH, body, auth, "batch-1")
    again = post(client, BATCH, body, auth, "batch-1")
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert first.get_json()["rejected"] == 1
    assert len(stored_points(app, "idem.b")) == 1


def test_a_refusal_after_the_write_is_kept_too(client, app, auth):
    client.post(COUNTER, json={"name": "typed"}, headers=auth)
    first = post(client, "/api/metrics/value", {"name": "typed", "value": 1}, auth, "v-1")
    again = post(client, "/api/metrics/value", {"name": "typed", "value": 1}, auth, "v-1")
    assert first.status_code == again.status_code == 409
    assert again.get_data() == first.get_data()
    assert again.headers["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize("key", ["x" * 256, "has space", "tab\tbed", "caf\u00e9"])
def test_a_malformed_idempotency_key_is_400(client, app, auth, key):
    response = client.post(
        COUNTER,
        json={"name": "idem"},
        headers={**auth, "Idempotency-Key": key.encode().decode("latin-1")},
    )
    assert response.status_code == 400
    assert "Idempotency-Key" in response.get_json()["error"]["details"]
    assert stored_points(app, "idem") == []


def test_the_longest_key_is_accepted(client, app, auth):
    key = "~" * 255
    assert post(client, COUNTER, {"name": "idem"}, auth, key).status_code == 201
    assert post(client, COUNTER, {"name": "idem"}, auth, key).status_code == 201
    assert len(stored_points(app, "idem")) == 1


def test_a_lost_commit_answer_is_retried_exactly(app, client, auth, monkeypatch):
    client.post(COUNTER, json={"name": "warm"}, headers=auth)  # the key's lookup is cached now
    engine = get_store(app).write
    real_commit = engine.dialect.do_commit
    lost = []

    def commit_then_lose_the_answer(dbapi_connection):
        real_commit(dbapi_connection)
        if not lost:
            lost.append(1)
            if engine.dialect.name == "sqlite":
                raise sqlite3.OperationalError("disk I/O error")
            raise pymysql.err.OperationalError(2013, "Lost connection to server during query")

    monkeypatch.setattr(engine.dialect, "do_commit", commit_then_lose_the_answer)
    first = post(client, COUNTER, {"name": "lost", "value": 3}, auth, "retry-me")
    assert first.status_code == 503  # the commit landed but its answer did not
    retried = post(client, COUNTER, {"name": "lost", "value": 3}, auth, "retry-me")
    assert retried.status_code == 201
    # On ClickHouse the commit lost was of the pending receipt, before any point was sent:
    # the failed write withdrew it, and the retry applies the request.
    replayed = None if on_clickhouse(app) else "true"
    assert retried.headers.get("Idempotent-Replayed") == replayed
    assert [v for _, v in stored_points(app, "lost")] == [3.0]


def test_an_expired_key_applies_again(client, app, auth):
    assert post(client, COUNTER, {"name": "idem"}, auth, "old").status_code == 201

    def age(conn):
        conn.execute(idempotency_keys.update().values(created_at=utcnow() - timedelta(hours=25)))

    run_in_transaction(get_store(app).write, age)
    response = post(client, COUNTER, {"name": "idem"}, auth, "old")
    assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers
    assert len(stored_points(app, "idem")) == 2


def test_a_replay_outlives_the_accepted_time_window(make_app):
    app = make_app(METRICS_MAX_PAST_DAYS=7)
    auth = {"X-API-Key": new_key(app)}
    body = {"name": "late", "recorded_at": isoformat_z(utcnow() - timedelta(days=6))}
    assert post(app.test_client(), COUNTER, body, auth, "late-1").status_code == 201
    stricter = make_app(METRICS_MAX_PAST_DAYS=1)  # as if the point had aged meanwhile
    response = post(stricter.test_client(), COUNTER, body, auth, "late-1")
    assert response.status_code == 201 and response.headers["Idempotent-Replayed"] == "true"
    fresh = post(stricter.test_client(), COUNTER, body, auth, "late-2")
    assert fresh.get_json()["error"]["code"] == "TIMESTAMP_OUT_OF_RANGE"


def test_concurrent_duplicates_on_several_workers_apply_once(app, database_url, serve):
    server = serve(DATABASE_URL=database_url, WEB_CONCURRENCY="3", THREADS="4")
    key = new_key(app)
    answers = []
    barrier = threading.Barrier(12)

    def send():
        session = Session(server, {"X-API-Key": key, "Idempotency-Key": "same-one"})
        barrier.wait()
        answers.append(session.post(COUNTER, {"name": "dup", "value": 7}))
        session.close()

    threads = [threading.Thread(target=send) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert answers == [(201, {"success": True, "message": "Counter metric recorded"})] * 12
    assert [v for _, v in stored_points(app, "dup")] == [7.0]


def test_sweep_removes_expired_receipts_in_chunks(app, client, auth):
    for n in range(5):
        post(client, COUNTER, {"name": "idem"}, auth, f"sweep-{n}")
    engine = get_store(app).write
    later = utcnow() + timedelta(hours=25)
    assert run_in_transaction(engine, receipts.sweep, later, 2) == 2
    assert run_in_transaction(engine, receipts.sweep, later, 10) == 3
    with engine.connect() as conn:
        assert conn.execute(select(idempotency_keys)).all() == []
