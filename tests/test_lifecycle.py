"""Partitions ahead, retention and metric deletion, on both backends, with the clock moved by
``--now`` day after day; the timer of the embedded default."""

import random
import threading
import time as clock
import uuid
from datetime import datetime, time, timedelta

import pytest
from sqlalchemy import func, select

from app import create_app, shutdown
from app.core.timeutil import isoformat_z, utcnow
from app.db import get_store, maintenance, partitions, rollups, run_in_transaction
from app.db.migrate import migrate
from app.db.schema import metric_points, metrics
from app.serve.timer import MaintenanceTimer
from tests.conftest import clickhouse_points_url
from tests.helpers import new_key, on_clickhouse, orphan_points, orphan_rows, stored_points
from tests.test_clickhouse import FAR_TTL

pytestmark = pytest.mark.points

KEEP_DAYS = 10  # retention 9 + grace 1
SETTINGS = {
    "METRICS_RETENTION_DAYS": 9,
    "METRICS_RETENTION_GRACE_DAYS": 1,
    "RETENTION_CHUNK_ROWS": 7,  # small, so the chunked path loops
    "RETENTION_CHUNK_PAUSE_MS": 0,
}


@pytest.fixture(params=["sqlite", "mysql", "clickhouse"])
def lifecycle_app(request, tmp_path):
    """An app on an empty database of the test's own (partitions are reshaped); on
    ``clickhouse`` its points in a ClickHouse database of its own."""
    points = {}
    if request.param == "mysql":
        url = request.getfixturevalue("fresh_mysql_url")
    else:
        url = f"sqlite:///{tmp_path / 'life.sqlite3'}"
    if request.param == "clickhouse":
        points = {"POINTS_URL": clickhouse_points_url(request)}
    app = create_app({"TESTING": True, "DATABASE_URL": url, **SETTINGS, **points})
    if get_store(app).sql.NAME == "sqlite":
        migrate(get_store(app).write)
    if points:  # migrated with a long retention: its backstop TTL keeps the aged points
        far = create_app({"TESTING": True, "DATABASE_URL": url, **points, **FAR_TTL})
        get_store(far).points.migrate()
        shutdown(far)
    yield app
    shutdown(app)


def insert_points(app, name, moments):
    """Store points as the writer does — with their rollups — but directly (ingest would
    refuse times outside its window)."""
    db = get_store(app)

    def work(conn):
        metric = conn.execute(select(metrics.c.id).where(metrics.c.name == name)).scalar()
        if metric is None:
            now = utcnow()
            conn.execute(
                metrics.insert().values(name=name, type="counter", created_at=now, updated_at=now)
            )
            metric = conn.execute(select(metrics.c.id).where(metrics.c.name == name)).scalar()
        rows = [
            {"metric_id": metric, "series_id": 0, "recorded_at": m, "value": 1.0} for m in moments
        ]
        if on_clickhouse(app):
            return rows
        conn.execute(metric_points.insert(), rows)
        rollups.upsert(conn, rollups.summarize(rows, exact_all=conn.dialect.name == "sqlite"))
        return None

    rows = run_in_transaction(db.write, work)
    if rows:  # ClickHouse's views make the rollups
        db.points.insert(rows, uuid.uuid4().hex)


def all_points(app):
    """Every stored (name, recorded_at), sorted."""
    if on_clickhouse(app):
        with get_store(app).write.connect() as conn:
            names = conn.execute(select(metrics.c.name).distinct()).scalars().all()
        return sorted((name, moment) for name in names for moment, _ in stored_points(app, name))
    query = select(metrics.c.name, metric_points.c.recorded_at).join(
        metrics, metrics.c.id == metric_points.c.metric_id
    )
    with get_store(app).write.connect() as conn:
        return sorted((row.name, row.recorded_at) for row in conn.execute(query))


def day_start(moment):
    return datetime.combine(moment.date(), time())


def test_a_hundred_days_of_maintenance_keep_exactly_the_window(lifecycle_app):
    app, db = lifecycle_app, get_store(lifecycle_app)
    rng = random.Random(7)
    start = day_start(utcnow())
    expected = []
    for day in range(100):
        now = start + timedelta(days=day, hours=3, minutes=17)
        ahead = db.ensure_partitions(isoformat_z(now))
        todays = [
            day_start(now)
            + timedelta(seconds=rng.randrange(86400), microseconds=rng.randrange(10**6))
            for _ in range(rng.randrange(3, 12))
        ]
        todays += [day_start(now), day_start(now) - timedelta(microseconds=1)]  # on the edge
        insert_points(app, f"life.{day % 3}", todays)
        expected += [(f"life.{day % 3}", m) for m in todays]
        result = db.trim(isoformat_z(now))
        cutoff = day_start(now) - timedelta(days=KEEP_DAYS)
        removed = [p for p in expected if p[1] < cutoff]
        expected = sorted(p for p in expected if p[1] >= cutoff)
        assert result["rows_deleted"] + result["rows_dropped_with_partitions"] == len(removed)
        assert all_points(app) == expected
        if db.sql.NAME != "sqlite":
            assert ahead["days_ahead"] >= 7 and not ahead["future_rows"]
            with db.write.connect() as conn:
                days = partitions.daily(conn)
            assert days[0] + timedelta(days=1) > cutoff.date()  # expired days are gone
            assert days[-1] >= now.date() + timedelta(days=7)


def test_queries_over_the_edge_of_the_window_stay_exact(lifecycle_app):
    app, db = lifecycle_app, get_store(lifecycle_app)
    now = utcnow()
    cutoff = day_start(now) - timedelta(days=KEEP_DAYS)
    moments = [cutoff + timedelta(hours=h, minutes=7) for h in range(-30, 30)]
    insert_points(app, "edge", moments)
    result = db.trim()
    assert result["rows_deleted"] + result["rows_dropped_with_partitions"] == 30
    auth = {"X-API-Key": new_key(app)}

    def counts(start, **params):
        query = {"name": "edge", "operation": "count", "window": "1h", **params}
        query.update(start=isoformat_z(start), end=isoformat_z(cutoff + timedelta(days=2)))
        response = app.test_client().get("/api/metrics/aggregate", query_string=query, headers=auth)
        return response.status_code, response.get_json()

    status, raw_part = counts(cutoff, source="raw")  # only kept raw points
    assert status == 200 and raw_part["resolution"] == "raw"
    assert sum(p["value"] for p in raw_part["data"]) == 30
    status, whole = counts(cutoff - timedelta(days=1, minutes=30))  # past the raw horizon
    assert status == 200 and whole["resolution"] == "minute"
    assert whole["start"] == isoformat_z(cutoff - timedelta(days=1, minutes=30))
    values = {p["timestamp"]: p["value"] for p in whole["data"]}
    assert sum(values.values()) == 54  # 24 expired hours read from the minute rollups
    assert values[isoformat_z(cutoff - timedelta(hours=1))] == 1
    status, refused = counts(cutoff - timedelta(days=1), source="raw")
    assert status == 400 and refused["error"]["code"] == "RESOLUTION_UNAVAILABLE"


def test_a_dry_run_reports_and_changes_nothing(lifecycle_app):
    app = lifecycle_app
    old = day_start(utcnow()) - timedelta(days=KEEP_DAYS + 1)
    insert_points(app, "dry", [old + timedelta(minutes=m) for m in range(20)])
    before = all_points(app)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["retention", "run", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert '"dry_run": true' in result.output
    assert all_points(app) == before
    assert (
        '"rows_deleted": 20' in result.output
        or '"rows_dropped_with_partitions": 20' in result.output
    )
    assert runner.invoke(args=["retention", "run"]).exit_code == 0
    assert all_points(app) == []


def test_metrics_whose_points_all_expired_stay_defined(lifecycle_app):
    app = lifecycle_app
    insert_points(app, "gone.points", [day_start(utcnow()) - timedelta(days=40)])
    get_store(app).trim()
    assert all_points(app) == []
    auth = {"X-API-Key": new_key(app)}
    listed = app.test_client().get("/api/metrics", headers=auth).get_json()["data"]
    assert [m["name"] for m in listed] == ["gone.points"]


def test_ingest_keeps_working_while_retention_trims_in_chunks(lifecycle_app):
    app = lifecycle_app
    app.config.update(RETENTION_CHUNK_ROWS=250, RETENTION_CHUNK_PAUSE_MS=2)
    # Before 1970-01-02: no daily partition holds these, so even MySQL trims them in chunks.
    ancient = datetime(1970, 1, 1)
    insert_points(app, "old.rows", [ancient + timedelta(microseconds=n) for n in range(4000)])
    results, statuses = [], []
    trimmer = threading.Thread(target=lambda: results.append(get_store(app).trim()))
    client, auth = app.test_client(), {"X-API-Key": new_key(app)}
    trimmer.start()
    while trimmer.is_alive() or len(statuses) < 20:
        statuses.append(
            client.post("/api/metrics/counter", json={"name": "live"}, headers=auth).status_code
        )
    trimmer.join()
    assert set(statuses) == {201}
    assert results[0]["rows_deleted"] + results[0]["rows_dropped_with_partitions"] == 4000
    assert len(stored_points(app, "live")) == len(statuses)


def test_chunks_are_spaced_by_the_pause_and_by_the_chunk_before(lifecycle_app):
    """One pacer spans a whole trim, so many small metrics are paced like one big one."""
    engine = get_store(lifecycle_app).write
    now, slept = [0.0], []
    pacer = maintenance.Pacer(0.02, sleep=slept.append, clock=lambda: now[0])

    def chunk(conn, seconds):
        now[0] += seconds  # the chunk "takes" this long
        return 1

    for seconds in (0.0, 0.05, 0.001):
        pacer.run(engine, chunk, seconds)
    assert slept == [0.02, 0.05]


def test_deleting_a_metric_frees_its_name_and_leaves_nothing(lifecycle_app):
    app = lifecycle_app
    client, auth = app.test_client(), {"X-API-Key": new_key(app)}
    for _ in range(3):
        client.post("/api/metrics/counter", json={"name": "doomed"}, headers=auth)
    response = client.delete("/api/metrics/doomed", headers=auth)
    assert response.status_code == 200
    assert response.get_json() == {
        "message": "Metric deleted",
        "success": True,
        "metric": "doomed",
        "type": "counter",
        "points_deleted": 3,
    }
    assert client.get("/api/metrics/doomed", headers=auth).status_code == 404
    assert client.delete("/api/metrics/doomed", headers=auth).status_code == 404
    assert (
        client.post(
            "/api/metrics/value", json={"name": "doomed", "value": 2.5}, headers=auth
        ).status_code
        == 201
    )
    assert [v for _, v in stored_points(app, "doomed")] == [2.5]
    assert client.delete("/api/metrics/bad name", headers=auth).status_code == 400


@pytest.mark.not_on_clickhouse("ClickHouse deletes a metric's points in one statement")
def test_a_large_deletion_finishes_in_the_background(lifecycle_app):
    app = lifecycle_app
    insert_points(app, "big", [utcnow() - timedelta(seconds=n) for n in range(40)])  # > 7 a chunk
    auth = {"X-API-Key": new_key(app)}
    response = app.test_client().delete("/api/metrics/big", headers=auth)
    assert response.status_code == 202 and response.get_json()["points_deleted"] == 7

    def metric_rows():
        with get_store(app).write.connect() as conn:
            return conn.execute(select(func.count()).select_from(metrics)).scalar()

    deadline = utcnow() + timedelta(seconds=30)
    while (orphan_points(app) or metric_rows()) and utcnow() < deadline:
        threading.Event().wait(0.05)
    assert orphan_points(app) == 0 and metric_rows() == 0  # its rows, then the metric itself


def test_the_timer_runs_each_job_when_due_and_once(lifecycle_app):
    app = lifecycle_app
    timers = [MaintenanceTimer(get_store(app)) for _ in range(2)]
    first = timers[0].run_due()
    assert first[maintenance.PARTITIONS] is not None and first[maintenance.RETENTION] is not None
    assert timers[1].run_due() == {maintenance.PARTITIONS: None, maintenance.RETENTION: None}
    body = app.test_client().get("/ready").get_json()["maintenance"]
    assert body["runner"] == "timer"
    assert set(body["jobs"]) == {"partitions", "retention"}
    assert all(job["last_success_at"] for job in body["jobs"].values())


def test_rows_past_the_last_partition_raise_an_alert_not_a_split(fresh_mysql_url):
    app = create_app({"TESTING": True, "DATABASE_URL": fresh_mysql_url})
    far = day_start(utcnow()) + timedelta(days=30)
    insert_points(app, "future", [far])
    later = isoformat_z(far - timedelta(days=5))
    result = get_store(app).ensure_partitions(later)
    assert result["future_rows"] is True and result["created"] == []
    forced = app.test_cli_runner().invoke(args=["partitions", "ensure", "--now", later, "--force"])
    assert forced.exit_code == 0, forced.output
    assert all_points(app) == [("future", far)]
    with get_store(app).write.connect() as conn:
        assert partitions.days_ahead(conn, (far - timedelta(days=5)).date()) >= 7
    shutdown(app)


def test_metrics_delete_from_the_shell(lifecycle_app):
    app = lifecycle_app
    insert_points(app, "shell.gone", [utcnow() - timedelta(seconds=n) for n in range(20)])
    refused = app.test_cli_runner().invoke(args=["metrics", "delete", "shell.gone"], input="n\n")
    assert refused.exit_code == 1 and "Aborted" in refused.output
    assert len(all_points(app)) == 20  # asked first, and told no
    result = app.test_cli_runner().invoke(args=["metrics", "delete", "shell.gone"], input="y\n")
    assert result.exit_code == 0 and "deleted with 20 point(s)" in result.output
    assert all_points(app) == [] and orphan_points(app) == 0
    missing = app.test_cli_runner().invoke(args=["metrics", "delete", "shell.gone", "--yes"])
    assert missing.exit_code != 0 and "No metric named" in missing.output


def test_deleting_a_small_metric_leaves_no_rollup_or_stat_key(lifecycle_app):
    app = lifecycle_app
    client, auth = app.test_client(), {"X-API-Key": new_key(app)}
    for _ in range(3):
        client.post("/api/metrics/counter", json={"name": "del.d", "value": 1000}, headers=auth)
    made = app.test_cli_runner().invoke(args=["metrics", "stat-key", "del.d"])
    stat_key = made.output.strip().splitlines()[-1]
    assert client.delete("/api/metrics/del.d", headers=auth).status_code == 200
    assert orphan_rows(app) == {}
    assert (
        client.get("/c", query_string={"key": stat_key, "ukey": auth["X-API-Key"]}).status_code
        == 404
    )


def test_a_deleted_name_answers_as_the_new_metric_within_five_seconds(lifecycle_app):
    """Two servers: one deletes and recreates the name while the other keeps polling it."""
    writer = lifecycle_app
    reader = create_app(
        {
            "TESTING": True,
            **{k: writer.config[k] for k in ("DATABASE_URL", "POINTS_URL", *SETTINGS)},
        }
    )
    key = new_key(writer)
    auth = {"X-API-Key": key}
    write, read = writer.test_client(), reader.test_client()
    items = [{"name": "del.d", "type": "counter", "value": 1000} for _ in range(6)]
    write.post("/api/metrics/batch", json={"metrics": items}, headers=auth)
    query = {"name": "del.d", "window": "1m", "fill": "none"}

    def poll():
        return read.get("/api/metrics/aggregate", query_string=query, headers=auth).get_json()

    assert poll()["type"] == "counter"  # the reader now knows the old metric
    assert write.delete("/api/metrics/del.d", headers=auth).status_code == 200
    deleted_at = clock.monotonic()
    write.post("/api/metrics/value", json={"name": "del.d", "value": 7}, headers=auth)
    answers = []
    while clock.monotonic() - deleted_at < 5.5:
        body = poll()
        answers.append((clock.monotonic() - deleted_at, body["type"], body["data"]))
        clock.sleep(0.05)
    assert all(sum(p["value"] for p in data) != 6000 for _, _, data in answers)  # never old data
    late = [(kind, data) for elapsed, kind, data in answers if elapsed > 5]
    assert late and all(
        kind == "value" and [p["value"] for p in data] == [7] for kind, data in late
    )
    shutdown(reader)
