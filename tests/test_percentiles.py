"""Percentiles (p50, p90, p95, p99) of value metrics, on both backends: from the rollups'
sketches within 1 % of the exact nearest-rank quantile of the raw points, and exact with
``source=raw``; over random value sets (heavy tails, negatives, zeros, tiny and huge values),
random ranges and windows, with filters, group_by and time zones; a counter's percentile, the
raw bound, empty buckets, CSV, concurrent writers to one row, and a database whose rollups
predate sketches."""

import math
import random
import threading
from datetime import timedelta

import pytest
from sqlalchemy import text

from app.core.constants import PERCENTILES
from app.core.sketch import Sketch, frame_count, nearest_rank
from app.core.timeutil import floor_to, isoformat_z, utcnow
from app.db import get_store, rollups
from app.db.transaction import run_in_transaction, run_read
from tests.helpers import new_key, on_clickhouse, post_hosted_values

pytestmark = pytest.mark.points

HOSTS = ("a", "b", "c")
WINDOWS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400}


def exact(values, q):
    """The nearest-rank quantile: the value at rank ⌈q·n⌉ (1-based) in value order."""
    ordered = sorted(values)
    return ordered[nearest_rank(q, len(ordered)) - 1] if ordered else None


def within_one_percent(found, expected):
    if expected == 0:
        return found == 0
    return found is not None and abs(found - expected) <= 0.01 * abs(expected)


def draw(rng):
    """One value of a random family: heavy tails, signs, zeros, the range's ends."""
    family = rng.randrange(7)
    if family == 0:
        return rng.lognormvariate(3, 2)  # latency-like
    if family == 1:
        return -rng.paretovariate(1.2) * 10  # heavy negative tail
    if family == 2:
        return 0.0
    if family == 3:
        return rng.choice([1e-9, -1e-9, 1e16, -1e16, 2.5e-9, 9.99e15])
    if family == 4:
        return float(rng.randrange(-1000, 1000))
    if family == 5:
        return rng.uniform(-1, 1) * 10 ** rng.randrange(-8, 15)
    return round(rng.gauss(250, 40), 3)


def query(client, headers, name, **params):
    response = client.get(f"/api/metrics/{name}", query_string=params, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.fixture
def seeded(make_app):
    """An app, an admin key, and metric ``lat`` with 1,500 random points over the last 50 hours
    (a third on host a, b and c each)."""
    app = make_app()
    headers = {"X-API-Key": new_key(app, scopes="admin")}
    client = app.test_client()
    rng = random.Random(926)
    now = utcnow()
    points = [
        (now - timedelta(seconds=rng.randrange(1, 50 * 3600), microseconds=rng.randrange(10**6)),
         draw(rng), rng.choice(HOSTS))
        for _ in range(1500)
    ]  # fmt: skip
    post_hosted_values(client, headers, "lat", points)
    return app, client, headers, points, now


def buckets_of(points, start, end, window_seconds, keep=lambda host: True):
    """{bucket start (ISO): [values]} of the points in [start, end) on UTC multiples."""
    found = {}
    for moment, value, host in points:
        if start <= moment < end and keep(host):
            found.setdefault(isoformat_z(floor_to(moment, window_seconds)), []).append(value)
    return found


def test_percentiles_from_rollups_are_within_one_percent_and_raw_ones_are_exact(seeded):
    _, client, headers, points, now = seeded
    rng = random.Random(7)
    for _ in range(12):
        window = rng.choice(list(WINDOWS))
        seconds = WINDOWS[window]
        span = rng.randrange(seconds, min(52 * 3600, seconds * 60))
        end = now - timedelta(seconds=rng.randrange(0, 3 * 3600), microseconds=rng.randrange(10**6))
        start = end - timedelta(seconds=span, microseconds=rng.randrange(10**6))
        expected = buckets_of(points, start, end, seconds)
        for operation, q in PERCENTILES.items():
            args = {"operation": operation, "window": window, "fill": "none",
                    "start": isoformat_z(start), "end": isoformat_z(end)}  # fmt: skip
            rolled = query(client, headers, "lat", **args)
            raw = query(client, headers, "lat", source="raw", **args)
            assert {p["timestamp"] for p in raw["data"]} == set(expected)
            for point in raw["data"]:
                assert point["value"] == exact(expected[point["timestamp"]], q), (args, point)
            got = {p["timestamp"]: p["value"] for p in rolled["data"]}
            if rolled["start"] == raw["start"]:  # not widened: the same buckets
                assert set(got) == set(expected)
            for label, value in got.items():
                assert within_one_percent(value, exact(expected[label], q)), (args, label)


def test_filters_group_by_and_top_take_percentiles_of_their_series(seeded):
    _, client, headers, points, now = seeded
    start, end = floor_to(now - timedelta(hours=30), 3600), floor_to(now, 3600)
    args = {"operation": "p95", "window": "1h", "fill": "none",
            "start": isoformat_z(start), "end": isoformat_z(end)}  # fmt: skip
    filtered = query(client, headers, "lat", filter="host!=c", **args)
    expected = buckets_of(points, start, end, 3600, keep=lambda host: host != "c")
    assert {p["timestamp"] for p in filtered["data"]} == set(expected)
    for point in filtered["data"]:
        assert within_one_percent(point["value"], exact(expected[point["timestamp"]], 0.95))
    grouped = query(client, headers, "lat", group_by="host", top=2, **args)
    groups = grouped["series"]
    assert len(groups) == 3 and groups[-1]["other"] is True
    whole = {host: [v for t, v, h in points if h == host and start <= t < end] for host in HOSTS}
    ranked = sorted(HOSTS, key=lambda host: -exact(whole[host], 0.95))
    assert [g["tags"]["host"] for g in groups[:2]] == ranked[:2]  # ties are improbable here
    for group in groups:
        hosts = [group["tags"]["host"]] if group["tags"] else ranked[2:]
        expected = buckets_of(points, start, end, 3600, keep=lambda host, hs=hosts: host in hs)
        for point in group["data"]:
            assert within_one_percent(point["value"], exact(expected[point["timestamp"]], 0.95))


def test_a_zone_s_days_take_percentiles_too(seeded):
    _, client, headers, points, now = seeded
    args = {"operation": "p50", "window": "1d", "tz": "Asia/Kathmandu", "source": "raw",
            "start": isoformat_z(now - timedelta(hours=49)), "end": isoformat_z(now)}  # fmt: skip
    raw = query(client, headers, "lat", **args)
    del args["source"]
    rolled = query(client, headers, "lat", **args)
    assert [p["timestamp"] for p in raw["data"]] == [p["timestamp"] for p in rolled["data"]]
    for exact_point, rolled_point in zip(raw["data"], rolled["data"], strict=True):
        assert within_one_percent(rolled_point["value"], exact_point["value"])


def test_a_counter_s_percentile_is_refused_and_empty_buckets_are_null(client, auth):
    assert client.post("/api/metrics/counter", json={"name": "hits"},
                       headers=auth).status_code == 201  # fmt: skip
    response = client.get("/api/metrics/hits?operation=p99", headers=auth)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "VALIDATION_ERROR" and "operation" in error["details"]
    body = {"metrics": ["hits"], "operation": "p50"}
    assert client.post("/api/query", json=body, headers=auth).status_code == 400
    now = utcnow()
    client.post("/api/metrics/value", json={"name": "ms", "value": 12.5}, headers=auth)
    start = isoformat_z(floor_to(now, 60) - timedelta(minutes=5))
    for fill in ("zero", "none"):
        answer = query(client, auth, "ms", operation="P99", window="1m", start=start, fill=fill)
        assert answer["operation"] == "p99"
        values = [p["value"] for p in answer["data"]]
        assert 12.5 in values
        assert set(values) == ({None, 12.5} if fill == "zero" else {12.5})


def test_a_percentile_over_more_raw_points_than_the_bound_is_too_large(make_app):
    app = make_app(METRICS_MAX_QUERY_POINTS=10)  # at most 100 raw points
    headers = {"X-API-Key": new_key(app)}
    client = app.test_client()
    now = floor_to(utcnow(), 3600)
    points = [(now - timedelta(minutes=30, seconds=i), float(i), "a") for i in range(100)]
    post_hosted_values(client, headers, "lat", points)
    args = {"operation": "p90", "window": "1d", "source": "raw",
            "start": isoformat_z(now - timedelta(hours=2)), "end": isoformat_z(now)}  # fmt: skip
    assert query(client, headers, "lat", **args)["data"][-1]["value"] == 89.0
    post_hosted_values(client, headers, "lat", [(now - timedelta(minutes=40), 1.0, "a")])
    response = client.get("/api/metrics/lat", query_string=args, headers=headers)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "QUERY_TOO_LARGE"
    args.pop("source")  # the rollups answer the same range without reading raw points
    assert query(client, headers, "lat", **args)["data"][-1]["value"] == pytest.approx(89, 0.01)


def test_csv_lists_percentiles(client, auth):
    now = floor_to(utcnow(), 60) - timedelta(minutes=2)
    values = [float(v) for v in range(1, 101)]
    items = [{"name": "ms", "type": "value", "value": v, "recorded_at": isoformat_z(now)}
             for v in values]  # fmt: skip
    assert (
        client.post("/api/metrics/batch", json={"metrics": items}, headers=auth).status_code == 201
    )
    start, end = isoformat_z(now), isoformat_z(now + timedelta(minutes=1))
    response = client.get(f"/api/metrics/ms?operation=p99&window=1m&start={start}&end={end}"
                          "&format=csv&source=raw", headers=auth)  # fmt: skip
    assert response.status_code == 200
    assert response.get_data(as_text=True).splitlines()[1].endswith(",99")


def stored_sketch(app, table, metric_id):
    """[(n, encoded sketch)] of a metric's rows of a rollup table (on ClickHouse: merged as a
    query merges them)."""
    if on_clickhouse(app):
        sql = (
            f"SELECT sum(n), sumMap(sketch) FROM {table.removeprefix('metric_')} "
            f"WHERE metric_id = {int(metric_id)} GROUP BY bucket"
        )
        rows = get_store(app).points.clients.get().query(sql).result_rows
        return [(n, Sketch(dict(counts)).encode()) for n, counts in rows]

    def read(conn):
        return conn.execute(
            text(f"SELECT n, sketch FROM {table} WHERE metric_id = :id"), {"id": metric_id}
        ).all()

    return run_read(get_store(app).write, read)


def test_concurrent_writers_to_one_minute_lose_no_count_of_its_sketch(make_app):
    apps = [make_app() for _ in range(4)]  # four group-commit writers, four transactions
    key = new_key(apps[0])
    moment = isoformat_z(floor_to(utcnow(), 60) - timedelta(minutes=1))
    apps[0].test_client().post("/api/metrics/value", json={"name": "ms", "value": 1,
                               "recorded_at": moment}, headers={"X-API-Key": key})  # fmt: skip
    errors = []

    def write(app, seed):
        client, rng = app.test_client(), random.Random(seed)
        for _ in range(15):
            items = [{"name": "ms", "type": "value", "value": rng.lognormvariate(2, 1),
                      "recorded_at": moment} for _ in range(20)]  # fmt: skip
            response = client.post("/api/metrics/batch", json={"metrics": items},
                                   headers={"X-API-Key": key})  # fmt: skip
            if response.status_code != 201:
                errors.append(response.get_json())

    threads = [threading.Thread(target=write, args=(app, i)) for i, app in enumerate(apps)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    metric_id = get_store(apps[0]).metric(1, "ms").id
    for table in ("metric_rollups_minute", "metric_rollups_hour"):
        ((n, blob),) = stored_sketch(apps[0], table, metric_id)
        assert n == 1 + 4 * 15 * 20
        assert Sketch.decode(blob).count == n


@pytest.mark.not_on_clickhouse("ClickHouse's tiers had sketches from the start")
def test_rollups_made_before_sketches_answer_from_raw_points_until_rebuilt(app, client, auth):
    now = floor_to(utcnow(), 3600) - timedelta(hours=1)
    items = [{"name": "ms", "type": "value", "value": float(v),
              "recorded_at": isoformat_z(now + timedelta(seconds=v))}
             for v in range(1, 201)]  # fmt: skip
    items.append({"name": "hits", "type": "counter", "value": 3, "recorded_at": isoformat_z(now)})
    assert (
        client.post("/api/metrics/batch", json={"metrics": items}, headers=auth).status_code == 201
    )
    store = get_store(app)

    def forget_sketches(conn):  # what migration 011 finds: rollups without sketches
        for table in ("metric_rollups_minute", "metric_rollups_hour"):
            conn.execute(text(f"UPDATE {table} SET sketch = NULL"))
        conn.execute(text("UPDATE rollup_state SET sketches_from = NULL"))

    run_in_transaction(store.write, forget_sketches)
    store._watermarks.clear()
    args = {"operation": "p99", "window": "1h", "start": isoformat_z(now),
            "end": isoformat_z(now + timedelta(hours=1))}  # fmt: skip
    assert query(client, auth, "ms", **args)["data"][0]["value"] == 198  # exact: raw points
    runner = app.test_cli_runner()
    assert runner.invoke(args=["rollups", "check"]).exit_code != 0  # the sketches are missing
    result = runner.invoke(args=["rollups", "rebuild"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(args=["rollups", "check"]).exit_code == 0
    store._watermarks.clear()
    assert store.rollup_watermarks(sketches=True)["hour"] is not None
    ((n, blob),) = stored_sketch(app, "metric_rollups_hour", store.metric(1, "ms").id)
    assert Sketch.decode(blob).count == n == 200
    ((_, counter_blob),) = stored_sketch(app, "metric_rollups_hour", store.metric(1, "hits").id)
    assert counter_blob is None
    value = query(client, auth, "ms", **args)["data"][0]["value"]
    assert value != 198 and math.isclose(value, 198, rel_tol=0.01)  # the sketch's answer


def test_a_row_s_sketch_frames_are_compacted_and_stay_exact(make_app, monkeypatch):
    # MySQL appends a frame a transaction and compacts a row after 3 of them (here); SQLite
    # merges as it writes.
    monkeypatch.setattr(rollups, "COMPACT_APPENDS", 3)
    monkeypatch.setattr(rollups, "COMPACT_TOGETHER", 1)
    app = make_app()
    client, headers = app.test_client(), {"X-API-Key": new_key(app)}
    moment = floor_to(utcnow(), 60) - timedelta(minutes=1)
    rng, values = random.Random(5), []
    for _ in range(10):  # one transaction each
        batch = [rng.lognormvariate(3, 1) for _ in range(5)]
        values += batch
        items = [{"name": "ms", "type": "value", "value": v, "recorded_at": isoformat_z(moment)}
                 for v in batch]  # fmt: skip
        assert client.post("/api/metrics/batch", json={"metrics": items},
                           headers=headers).status_code == 201  # fmt: skip
    store = get_store(app)
    metric_id = store.metric(1, "ms").id
    sqlite = store.sql.NAME == "sqlite"
    for table in ("metric_rollups_minute", "metric_rollups_hour"):
        ((n, blob),) = stored_sketch(app, table, metric_id)
        assert 1 <= frame_count(blob) <= (1 if sqlite else 3)
        assert n == 50 and Sketch.decode(blob) == Sketch.of(values)
    assert app.test_cli_runner().invoke(args=["rollups", "check"]).exit_code == 0
