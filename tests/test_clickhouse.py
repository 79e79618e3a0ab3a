"""Points in ClickHouse (POINTS_URL): the client a URL makes, the settings that refuse what the
in-process engine cannot do, the schema, and the write protocol between the relational receipt
and the points, with the process "killed" between its steps (the write raises there: a real
kill would need another process, which chdb's one-process engine cannot be shared with)."""

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app import config, create_app, shutdown
from app.config import ConfigError, load, server_settings
from app.core.timeutil import isoformat_z, utcnow
from app.db import get_store, run_in_transaction
from app.db.clickhouse import client, writes
from app.db.clickhouse.points import ClickHousePoints
from app.db.migrate import migrate
from app.db.schema import idempotency_keys
from tests.clients import call
from tests.conftest import clickhouse_points_url
from tests.harness import ROOT, free_port
from tests.helpers import new_key, orphan_rows, stored_points

pytestmark = [pytest.mark.points, pytest.mark.points_mysql]
ON_CLICKHOUSE = pytest.mark.parametrize("backend", ["clickhouse", "mysql-clickhouse"])
COUNTER = "/api/metrics/counter"
# Settings whose backstop TTLs stay out of the way of points a test makes look old.
FAR_TTL = {
    "METRICS_RETENTION_DAYS": 40_000,
    "METRICS_ROLLUP_MINUTE_DAYS": 40_000,
    "METRICS_ROLLUP_HOUR_DAYS": 40_000,
}


class Crash(Exception):
    """The process dies here (the write goes no further)."""


def test_a_server_url_gives_the_client_its_host_port_database_credentials_and_settings():
    target = client.parse("clickhouse://writer:p%40ss@ch1.internal:8124/metrics?insert_quorum=2")
    arguments = client.client_arguments(target)
    assert arguments["interface"] == "http"
    assert (arguments["host"], arguments["port"], arguments["database"]) == (
        "ch1.internal",
        8124,
        "metrics",
    )
    assert (arguments["username"], arguments["password"]) == ("writer", "p@ss")
    assert arguments["settings"]["insert_quorum"] == "2"
    assert arguments["settings"]["async_insert"] == 0  # every insert is durable when it returns
    assert arguments["settings"]["insert_deduplicate"] == 1
    assert arguments["autogenerate_session_id"] is False  # many threads, no shared session
    assert "p@ss" not in repr(target)


def test_a_server_url_has_defaults_and_https():
    plain = client.client_arguments(client.parse("clickhouse://ch.internal"))
    assert (plain["port"], plain["database"], plain["username"]) == (8123, "default", "default")
    secure = client.client_arguments(client.parse("clickhouses://u:p@ch.internal/db"))
    assert (secure["interface"], secure["port"]) == ("https", 8443)


def test_an_in_process_url_names_the_directory_and_database():
    arguments = client.client_arguments(client.parse("chdb:///srv/points?database=gf"))
    assert arguments["interface"] == "chdb"
    assert (arguments["path"], arguments["database"]) == ("/srv/points", "gf")
    assert arguments["settings"]["async_insert"] == 0


def test_points_url_must_name_clickhouse():
    with pytest.raises(ConfigError, match="POINTS_URL"):
        load({"POINTS_URL": "mysql+pymysql://root@localhost/points"})


def test_the_in_process_engine_refuses_queue_mode_and_several_workers():
    env = {"POINTS_URL": "chdb:///var/points", "REDIS_URL": "redis://127.0.0.1:6379"}
    with pytest.raises(ConfigError, match="INGEST_MODE=queue.*one process"):
        load({**env, "INGEST_MODE": "queue"})
    with pytest.raises(ConfigError, match="WEB_CONCURRENCY=2.*one process"):
        server_settings(
            {**env, "DATABASE_URL": "mysql+pymysql://root@db/gf", "WEB_CONCURRENCY": "2"}
        )
    settings = server_settings({**env, "DATABASE_URL": "mysql+pymysql://root@db/gf"})
    assert settings["workers"] == 1 and settings["threads"] > 1


def test_a_command_that_touches_no_point_never_opens_the_engine(tmp_path):
    # Another directory than the run's engine: opening it in this process would fail.
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'gf.sqlite3'}",
            "POINTS_URL": f"chdb:///{tmp_path / 'elsewhere'}",
        }
    )
    try:
        migrate(get_store(app).write)
        result = app.test_cli_runner().invoke(args=["keys", "create", "--name", "ops"])
        assert result.exit_code == 0, result.output
        assert not (tmp_path / "elsewhere").exists()
    finally:
        shutdown(app)


@ON_CLICKHOUSE
def test_the_schema_is_recorded_and_applied_once(app, make_app):
    store = get_store(app)
    assert store.points.migrate() == []
    versions = store.points.clients.get().query("SELECT version FROM schema_migrations")
    assert [row[0] for row in versions.result_rows] == ["001_points"]
    assert store.migrate() == []
    tables = store.points.clients.get().query(
        "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase()"
    )
    ttls = {name: engine for name, engine in tables.result_rows if "TTL" in engine}
    # The backstop: two days past what retention keeps (90 + 1 days of raw points).
    assert "toIntervalDay(93)" in ttls["points"] and "ttl_only_drop_parts = 1" in ttls["points"]
    assert set(ttls) == {"points", "rollups_minute", "rollups_hour"}
    make_app(**FAR_TTL)  # a retention past DateTime's range: no backstop, rather than a wrong one
    tables = store.points.clients.get().query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() "
        "AND engine_full LIKE '%TTL%'"
    )
    assert tables.result_rows == []


@ON_CLICKHOUSE
def test_a_block_sent_twice_under_one_token_lands_once_in_points_and_rollups(app, runner):
    store = get_store(app)
    moment = (utcnow() - timedelta(minutes=5)).replace(microsecond=0)
    rows = [{"metric_id": 7, "series_id": 0, "recorded_at": moment, "value": v} for v in (0.1, 0.2)]
    token = "a" * 32
    store.points.insert(rows, token)
    store.points.insert(rows, token)  # a client-side retry of the same insert
    assert store.points.landed(token) and not store.points.landed("b" * 32)
    tiers = store.points.clients.get().query(
        "SELECT sum(n), toString(sum(total)) FROM rollups_minute WHERE metric_id = 7"
    )
    assert tiers.result_rows == [(2, "0.3")]  # 0.1 + 0.2, exactly
    assert len(store.points.stored_points(7)) == 2


def _age_receipts(app, seconds):
    """Move every receipt's claim time back, as if the retry came that much later."""

    def work(conn):
        keys = idempotency_keys.c
        rows = conn.execute(select(keys.scope_id, keys.idem_key, keys.created_at)).all()
        for scope, key, created_at in rows:
            conn.execute(
                update(idempotency_keys)
                .where(keys.scope_id == scope, keys.idem_key == key)
                .values(created_at=created_at - timedelta(seconds=seconds))
            )

    run_in_transaction(get_store(app).write, work)


def _post(client, auth, key, value=3):
    return client.post(
        COUNTER, json={"name": "paid", "value": value}, headers={**auth, "Idempotency-Key": key}
    )


@ON_CLICKHOUSE
def test_killed_after_the_receipt_before_the_points_a_later_retry_applies_them_once(
    app, client, auth, monkeypatch
):
    real_insert = ClickHousePoints.insert
    crashes = []

    def crash_once(self, rows, token):
        if not crashes:
            crashes.append(token)
            raise Crash("killed before the points were sent")
        return real_insert(self, rows, token)

    monkeypatch.setattr(ClickHousePoints, "insert", crash_once)
    monkeypatch.setattr(writes, "PENDING_WAIT_SECONDS", 0.2)
    assert _post(client, auth, "order-1").status_code == 500  # the process died mid-write
    assert stored_points(app, "paid") == []
    # Within the lease the first write may still be under way: the retry is told to wait.
    waiting = _post(client, auth, "order-1")
    assert waiting.status_code == 503 and "Retry-After" in waiting.headers
    _age_receipts(app, writes.LEASE_SECONDS + 1)
    retried = _post(client, auth, "order-1")
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers
    again = _post(client, auth, "order-1")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert [v for _, v in stored_points(app, "paid")] == [3.0]
    assert not get_store(app).points.landed(crashes[0])
    assert app.test_cli_runner().invoke(args=["rollups", "check"]).exit_code == 0


@ON_CLICKHOUSE
def test_killed_after_the_points_before_the_receipt_is_done_a_retry_a_day_later_replays(
    app, client, auth, monkeypatch
):
    real_confirm = writes.receipts.confirm
    crashes = []

    def crash_once(conn, held, token):
        if not crashes:
            crashes.append(token)
            raise Crash("killed after the points landed")
        return real_confirm(conn, held, token)

    monkeypatch.setattr(writes.receipts, "confirm", crash_once)
    assert _post(client, auth, "order-2", value=5).status_code == 500
    assert [v for _, v in stored_points(app, "paid")] == [5.0]  # the points landed
    # 23 hours later: long past ClickHouse's deduplication window (it counts blocks), within
    # the Idempotency-Key's 24 hours. The receipt decides: the points landed, so it replays.
    for n in range(3):  # blocks in between, as a busy service writes
        assert client.post(COUNTER, json={"name": f"other{n}"}, headers=auth).status_code == 201
    _age_receipts(app, 23 * 3600)
    retried = _post(client, auth, "order-2", value=5)
    assert retried.status_code == 201 and retried.headers["Idempotent-Replayed"] == "true"
    assert [v for _, v in stored_points(app, "paid")] == [5.0]
    assert app.test_cli_runner().invoke(args=["rollups", "check"]).exit_code == 0


@ON_CLICKHOUSE
def test_points_unreachable_is_a_503_and_the_retry_applies_once(app, client, auth, monkeypatch):
    real_insert = ClickHousePoints.insert

    def unreachable(self, rows, token):
        from app.db.errors import PointsUnavailable

        raise PointsUnavailable("ClickHouse: connection refused")

    monkeypatch.setattr(ClickHousePoints, "insert", unreachable)
    first = _post(client, auth, "order-3", value=2)
    assert first.status_code == 503 and first.json["error"]["code"] == "SERVICE_UNAVAILABLE"
    monkeypatch.setattr(ClickHousePoints, "insert", real_insert)
    _age_receipts(app, writes.LEASE_SECONDS + 1)
    assert _post(client, auth, "order-3", value=2).status_code == 201
    assert _post(client, auth, "order-3", value=2).headers["Idempotent-Replayed"] == "true"
    assert [v for _, v in stored_points(app, "paid")] == [2.0]


@ON_CLICKHOUSE
def test_deleting_a_metric_removes_its_points_and_rollups_from_clickhouse(app, client, auth):
    for value in (1, 2):
        body = {"name": "gone", "value": value, "tags": {"host": f"h{value}"}}
        assert client.post(COUNTER, json=body, headers=auth).status_code == 201
    assert client.post(COUNTER, json={"name": "kept"}, headers=auth).status_code == 201
    deleted = client.delete("/api/metrics/gone", headers=auth)
    assert deleted.status_code == 200 and deleted.json["points_deleted"] == 2
    assert orphan_rows(app) == {}
    assert stored_points(app, "gone") == [] and len(stored_points(app, "kept")) == 1
    # The name is free at once: a new metric of another type, with none of the old points.
    again = client.post("/api/metrics/value", json={"name": "gone", "value": 9}, headers=auth)
    assert again.status_code == 201
    assert [v for _, v in stored_points(app, "gone")] == [9.0]


@ON_CLICKHOUSE
def test_retention_drops_whole_days_and_each_tier_at_its_own_horizon(make_app):
    app = make_app(
        METRICS_RETENTION_DAYS=9,
        METRICS_RETENTION_GRACE_DAYS=1,
        METRICS_ROLLUP_MINUTE_DAYS=20,
        METRICS_ROLLUP_HOUR_DAYS=60,
        METRICS_MAX_PAST_DAYS=1,
    )
    # Migrated again with a long retention: the backstop TTL (from the last migrate) keeps
    # the aged points inserted below, for the retention job to remove.
    make_app(**FAR_TTL)
    store, auth = get_store(app), {"X-API-Key": new_key(app)}
    client = app.test_client()
    assert client.post(COUNTER, json={"name": "aged"}, headers=auth).status_code == 201
    metric = store.metric(1, "aged")
    today = utcnow().replace(hour=12, minute=0, second=0, microsecond=0)
    days = (2, 15, 30, 90)  # kept raw; minute and hour tiers; hour tier only; nothing
    rows = [
        {"metric_id": metric.id, "series_id": 0, "recorded_at": today - timedelta(days=d),
         "value": 1.0}
        for d in days
    ]  # fmt: skip
    store.points.insert(rows, "c" * 32)
    result = store.trim()
    assert len(result["partitions_dropped"]) == 3 and result["rows_dropped_with_partitions"] == 3
    assert result["minute_rollups_deleted"] == 2 and result["hour_rollups_deleted"] == 1
    kept = [moment for moment, _ in stored_points(app, "aged")]
    assert kept == [today - timedelta(days=2), max(kept)]  # and the point written just now
    # Past the raw points' horizon the hour tier still answers a daily query, and says so.
    start = (today - timedelta(days=31)).replace(hour=0)
    answer = client.get(
        "/api/metrics/aggregate",
        query_string={"name": "aged", "window": "1d", "start": isoformat_z(start),
                      "end": isoformat_z(start + timedelta(days=2))},
        headers=auth,
    )  # fmt: skip
    assert answer.status_code == 200 and answer.json["resolution"] == "hour"
    assert [bucket["value"] for bucket in answer.json["data"]] == [0, 1]


@ON_CLICKHOUSE
def test_ready_and_metrics_report_the_points_engine(app, client, auth):
    assert client.post(COUNTER, json={"name": "seen"}, headers=auth).status_code == 201
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json["checks"]["points"] == "ok"
    engine = ready.json["points_engine"]
    assert engine["engine"] == "clickhouse" and engine["up"] and engine["rows"]["points"] == 1
    scrape = client.get("/metrics").get_data(as_text=True)
    assert 'gf_points_engine_up{engine="clickhouse"} 1.0' in scrape
    assert 'gf_points_engine_rows{table="points"} 1.0' in scrape


def test_points_kept_in_the_database_are_copied_to_clickhouse_resumably(
    tmp_path, request, monkeypatch
):
    url = f"sqlite:///{tmp_path / 'gf.sqlite3'}"
    before = create_app({"TESTING": True, "DATABASE_URL": url})
    migrate(get_store(before).write)
    auth = {"X-API-Key": new_key(before)}
    start = (utcnow() - timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)
    items = [
        {"name": name, "type": kind, "value": value, "tags": {"host": f"h{i % 2}"},
         "recorded_at": isoformat_z(start + timedelta(hours=7 * i, seconds=i))}
        for i in range(10)
        for name, kind, value in (("copy.hits", "counter", i), ("copy.ms", "value", 0.1 * i))
    ]  # fmt: skip
    batch = before.test_client().post("/api/metrics/batch", json={"metrics": items}, headers=auth)
    assert batch.status_code == 201

    def answers(app):
        found = []
        for name in ("copy.hits", "copy.ms"):
            for operation in ("sum", "count", "min", "max", "avg", "p99"):
                query = {"name": name, "operation": operation, "window": "1h",
                         "start": isoformat_z(start), "end": isoformat_z(start + timedelta(days=3)),
                         "group_by": "host"}  # fmt: skip
                response = app.test_client().get("/api/metrics/aggregate", query_string=query,
                                                 headers=auth)  # fmt: skip
                if operation != "p99" or name == "copy.ms":
                    assert response.status_code == 200, response.json
                    found.append(response.json["series"])
        return found

    expected = answers(before)
    shutdown(before)
    after = create_app(
        {"TESTING": True, "DATABASE_URL": url, "POINTS_URL": clickhouse_points_url(request)}
    )
    get_store(after).points.migrate()
    real_insert, sent = ClickHousePoints.insert, []

    def crash_on_the_third_day(self, rows, token):
        if len(sent) == 2:
            raise Crash("killed in the middle of the copy")
        sent.append(token)
        return real_insert(self, rows, token)

    monkeypatch.setattr(ClickHousePoints, "insert", crash_on_the_third_day)
    runner = after.test_cli_runner()
    assert runner.invoke(args=["points", "copy", "--metric", "copy.hits"]).exit_code != 0
    monkeypatch.setattr(ClickHousePoints, "insert", real_insert)
    finished = runner.invoke(args=["points", "copy"])
    assert finished.exit_code == 0, finished.output
    result = json.loads(finished.output.splitlines()[-1])
    assert result["metrics"] == 2 and result["points"] == 20
    assert result["days_already_there"] == 2 and result["days_copied"] == 4
    again = json.loads(runner.invoke(args=["points", "copy"]).output.splitlines()[-1])
    assert again["days_copied"] == 0
    assert answers(after) == expected
    assert runner.invoke(args=["rollups", "check"]).exit_code == 0
    rebuilt = runner.invoke(args=["rollups", "rebuild"])
    assert rebuilt.exit_code != 0 and "nothing to rebuild" in rebuilt.output
    shutdown(after)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_copy_needs_clickhouse(app):
    result = app.test_cli_runner().invoke(args=["points", "copy"])
    assert result.exit_code != 0 and "POINTS_URL is not set" in result.output


def _run(*command, **env):
    """Run a command of the project in another process with ``env`` (nothing of the
    developer's settings); (exit status, stdout lines, stderr lines)."""
    clean = {k: v for k, v in os.environ.items() if k not in config.VARIABLES}
    done = subprocess.run(
        command, cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=120
    )
    return done.returncode, done.stdout.strip().splitlines(), done.stderr.strip().splitlines()


GUNICORN = (sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py")
FLASK = (sys.executable, "-m", "flask", "--app", "app")


def test_the_server_refuses_several_workers_or_queue_mode_on_the_in_process_engine(tmp_path):
    env = {"POINTS_URL": f"chdb:///{tmp_path / 'points'}", "PORT": str(free_port())}
    code, _, lines = _run(*GUNICORN, **env, WEB_CONCURRENCY="2")
    assert code == 2 and len(lines) == 1 and "WEB_CONCURRENCY=2" in lines[0]
    assert "one process" in lines[0]
    queue = {"INGEST_MODE": "queue", "REDIS_URL": "redis://127.0.0.1:6379/0"}
    code, _, lines = _run(*GUNICORN, **env, **queue)
    assert code == 2 and "INGEST_MODE=queue" in lines[0] and "one process" in lines[0]


def test_make_run_with_points_in_process_serves_writes_and_queries(serve, tmp_path):
    """`POINTS_URL=chdb:///… make run`: migrate, then one gunicorn worker with threads (in
    other processes: this one has the run's engine open)."""
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'gf.sqlite3'}",
        "POINTS_URL": f"chdb:///{tmp_path / 'points'}",
    }
    code, _, lines = _run(*FLASK, "db", "migrate", **env)
    assert code == 0, lines
    code, out, lines = _run(*FLASK, "keys", "create", "--name", "ops", **env)
    assert code == 0, lines
    server, auth = serve(**env), {"X-API-Key": out[-1]}
    for value in (0.1, 0.2):
        status, _, _ = call(server, "POST", COUNTER, {"name": "served", "value": value}, auth)
        assert status == 201
    path = "/api/metrics/served?aggregation=sum&interval=hour"
    status, _, body = call(server, "GET", path, headers=auth)
    assert status == 200 and [p["value"] for p in body["data"] if p["value"]] == [0.3]
    status, _, ready = call(server, "GET", "/ready")
    assert status == 200 and ready["points_engine"]["rows"]["points"] == 2
