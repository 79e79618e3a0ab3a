"""Rollups answer exactly what raw points answer, on both backends: a seeded property test over
random points, windows and unaligned ranges; watermarks after an upgrade; rebuild and check;
tier retention and resolution; concurrent writers to one minute."""

import random
import threading
from datetime import timedelta

import pytest
from sqlalchemy import text

from app.core.timeutil import isoformat_z, utcnow
from app.db import get_store, rollups, run_in_transaction, run_read
from app.db.schema import metric_points, metrics
from tests.helpers import new_key, on_clickhouse

pytestmark = pytest.mark.points

WINDOWS = ["1m", "5m", "15m", "1h", "1d"]
OPERATIONS = ["sum", "count", "avg", "min", "max"]


def values(rng):
    """Values of every kind a sum must be exact for: decimals, whole, huge, tiny."""
    kind = rng.random()
    if kind < 0.4:
        return round(rng.uniform(-1000, 1000), rng.randrange(0, 4))
    if kind < 0.6:
        return float(rng.randrange(-5, 50))
    if kind < 0.7:
        return rng.choice([1e16, -1e16, 9007199254740993.0, 0.1, 0.2, -0.3])
    if kind < 0.75:
        return rng.choice([3e-14, -7e-15, 1.5e-200])  # below DECIMAL(65,30)'s places
    return rng.uniform(-1, 1)


def moments(rng, base, count):
    """Times over two days, many on minute and hour edges (±1 µs)."""
    found = []
    for _ in range(count):
        at = base + timedelta(seconds=rng.randrange(2 * 86400))
        edge = rng.random()
        if edge < 0.2:
            at = at.replace(second=0, microsecond=0) + timedelta(
                microseconds=rng.choice([-1, 0, 1])
            )
        elif edge < 0.3:
            at = at.replace(minute=0, second=0, microsecond=0) + timedelta(
                microseconds=rng.choice([-1, 0, 1])
            )
        else:
            at = at.replace(microsecond=rng.randrange(10**6))
        found.append(at)
    return found


def post(client, auth, name, kind, points):
    for offset in range(0, len(points), 500):
        items = [
            {"name": name, "type": kind, "value": v, "recorded_at": isoformat_z(t)}
            for t, v in points[offset : offset + 500]
        ]
        response = client.post("/api/metrics/batch", json={"metrics": items}, headers=auth)
        assert response.status_code == 201 and response.get_json()["rejected"] == 0


def query(client, auth, name, start, end, **params):
    args = {"name": name, "start": isoformat_z(start), "end": isoformat_z(end), **params}
    response = client.get("/api/metrics/aggregate", query_string=args, headers=auth)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def same(rolled, raw, tiny):
    """Equal; sums with tiny values (summed as doubles on MySQL) to 1e-12 relative."""
    if rolled == raw or not tiny or rolled is None or raw is None:
        return rolled == raw
    return abs(rolled - raw) <= 1e-12 * max(abs(raw), abs(rolled), 1e-300)


@pytest.mark.parametrize("seed", [11, 23, 47])
def test_rollups_answer_what_raw_points_answer(app, client, auth, seed):
    rng = random.Random(seed)
    base = (utcnow() - timedelta(days=4)).replace(hour=0, minute=0, second=0, microsecond=0)
    points = {
        name: [(t, values(rng)) for t in moments(rng, base, 400)]
        for name in ("r.counter", "r.value")
    }
    post(client, auth, "r.counter", "counter", points["r.counter"])
    post(client, auth, "r.value", "value", points["r.value"])
    # MySQL sums |v| < 1e-13 as doubles (raw and rollups alike): to 1e-12 there, exact on SQLite.
    tiny = {
        name: not get_store(app).sql.NAME == "sqlite" and any(0 < abs(v) < 1e-13 for _, v in pts)
        for name, pts in points.items()
    }
    for _ in range(25):
        name, window, operation = (
            rng.choice(list(points)),
            rng.choice(WINDOWS),
            rng.choice(OPERATIONS),
        )
        start = base + timedelta(seconds=rng.randrange(86400), microseconds=rng.randrange(10**6))
        if rng.random() < 0.3:
            start = start.replace(second=0, microsecond=0)
        end = start + timedelta(seconds=rng.randrange(60, 86400), microseconds=rng.randrange(10**6))
        if window == "1m":
            end = min(end, start + timedelta(hours=6))
        rolled = query(client, auth, name, start, end, window=window, operation=operation)
        raw = query(
            client, auth, name, start, end, window=window, operation=operation, source="raw"
        )
        assert [p["timestamp"] for p in rolled["data"]] == [p["timestamp"] for p in raw["data"]]
        for mine, theirs in zip(rolled["data"], raw["data"], strict=True):
            assert same(
                mine["value"], theirs["value"], tiny[name] and operation in ("sum", "avg")
            ), (seed, name, window, operation, start, end, mine, theirs)


def test_exact_sums_hold_in_rollups(client, auth):
    day = (utcnow() - timedelta(days=1)).replace(hour=5, minute=0, second=0, microsecond=0)
    post(
        client,
        auth,
        "exact",
        "counter",
        [
            (day + timedelta(minutes=m), v)
            for m, v in ((1, 0.1), (2, 0.2), (70, -0.3), (80, 1e16), (90, 1))
        ],
    )
    body = query(client, auth, "exact", day, day + timedelta(days=1), window="1d", operation="sum")
    assert body["data"][0]["value"] == 10**16 + 1
    partial = query(client, auth, "exact", day, day + timedelta(hours=1, minutes=11), window="1d")
    assert partial["data"][0]["value"] == 0  # 0.1 + 0.2 - 0.3, exactly


def write_behind_rollups(app, name, moments_values):
    """Points stored the way a version without rollups stored them."""

    def work(conn):
        now = utcnow()
        conn.execute(
            metrics.insert().values(name=name, type="value", created_at=now, updated_at=now)
        )
        metric = conn.execute(text("SELECT id FROM metrics WHERE name = :n"), {"n": name}).scalar()
        rows = [{"metric_id": metric, "recorded_at": t, "value": v} for t, v in moments_values]
        conn.execute(metric_points.insert(), rows)

    run_in_transaction(get_store(app).write, work)


@pytest.mark.not_on_clickhouse("ClickHouse's views keep the tiers: nothing to rebuild")
def test_before_a_rebuild_queries_read_raw_points_never_zeros(app, client, auth, runner):
    day = (utcnow() - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    run_in_transaction(get_store(app).write, rollups.disown)  # an upgraded install with old points
    write_behind_rollups(
        app, "old", [(day + timedelta(minutes=m), float(m)) for m in range(0, 600, 7)]
    )
    get_store(app)._watermarks.clear()
    before = query(client, auth, "old", day, day + timedelta(days=1), window="1h", operation="sum")
    expected = [
        sum(float(m) for m in range(0, 600, 7) if h * 60 <= m < (h + 1) * 60) for h in range(24)
    ]
    assert [p["value"] for p in before["data"]] == expected
    checked = runner.invoke(args=["rollups", "check", "--metric", "old"])
    assert checked.exit_code == 1 and "difference" in checked.output
    rebuilt = runner.invoke(args=["rollups", "rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert run_read(get_store(app).write, rollups.complete_from)["hour"] is not None
    get_store(app)._watermarks.clear()
    after = query(client, auth, "old", day, day + timedelta(days=1), window="1h", operation="sum")
    assert after["data"] == before["data"]
    assert runner.invoke(args=["rollups", "check"]).exit_code == 0


@pytest.mark.not_on_clickhouse("ClickHouse's views keep the tiers: nothing to rebuild")
def test_a_rebuild_refuses_ranges_whose_raw_points_expired(runner):
    result = runner.invoke(
        args=["rollups", "rebuild", "--from", isoformat_z(utcnow() - timedelta(days=400))]
    )
    assert result.exit_code != 0 and "no longer kept" in result.output


def test_concurrent_writers_to_one_minute_lose_no_update(make_app, runner):
    apps = [make_app() for _ in range(4)]
    key = new_key(apps[0])
    minute = (utcnow() - timedelta(minutes=3)).replace(second=0, microsecond=0)

    def writer(n):
        client = apps[n].test_client()
        for i in range(40):
            at = minute + timedelta(seconds=i % 60, microseconds=n)
            body = {"name": "hot", "value": i, "recorded_at": isoformat_z(at)}
            assert (
                client.post(
                    "/api/metrics/counter", json=body, headers={"X-API-Key": key}
                ).status_code
                == 201
            )

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert minute_rollups(apps[0]) == [(160, 4 * sum(range(40)))]
    assert apps[0].test_cli_runner().invoke(args=["rollups", "check"]).exit_code == 0


def minute_rollups(app):
    """(n, total) of every stored minute rollup row (merged as a query merges them)."""
    if on_clickhouse(app):
        sql = "SELECT sum(n), sum(total) FROM rollups_minute GROUP BY metric_id, series_id, bucket"
        rows = get_store(app).points.clients.get().query(sql).result_rows
    else:
        with get_store(app).write.connect() as conn:
            rows = conn.execute(text("SELECT n, total FROM metric_rollups_minute")).all()
    return [(int(n), float(total)) for n, total in rows]


def test_past_a_tiers_horizon_a_coarser_one_answers_or_a_400_says_why(make_app):
    app = make_app(
        METRICS_MAX_PAST_DAYS=30,
        METRICS_RETENTION_DAYS=2,
        METRICS_RETENTION_GRACE_DAYS=0,
        METRICS_ROLLUP_MINUTE_DAYS=5,
    )
    client, auth = app.test_client(), {"X-API-Key": new_key(app)}
    old = (utcnow() - timedelta(days=10)).replace(hour=6, minute=0, second=0, microsecond=0)
    post(
        client,
        auth,
        "aged",
        "counter",
        [(old + timedelta(minutes=m, seconds=30), 1) for m in range(120)],
    )
    assert app.test_cli_runner().invoke(args=["retention", "run"]).exit_code == 0
    start = old - timedelta(minutes=17)  # unaligned: widened to the hour
    hourly = query(
        client, auth, "aged", start, old + timedelta(hours=3), window="1h", operation="count"
    )
    assert hourly["resolution"] == "hour" and hourly["start"] == isoformat_z(
        old - timedelta(hours=1)
    )
    assert [p["value"] for p in hourly["data"]] == [0, 60, 60, 0]
    args = {
        "name": "aged",
        "window": "1m",
        "start": isoformat_z(old),
        "end": isoformat_z(old + timedelta(hours=1)),
    }
    refused = client.get("/api/metrics/aggregate", query_string=args, headers=auth)
    assert refused.status_code == 400
    assert refused.get_json()["error"]["code"] == "RESOLUTION_UNAVAILABLE"


def test_with_no_raw_retention_rollups_alone_answer_in_whole_minutes(make_app):
    app = make_app(METRICS_RETENTION_DAYS=0)
    client, auth = app.test_client(), {"X-API-Key": new_key(app)}
    minute = (utcnow() - timedelta(hours=2)).replace(second=0, microsecond=0)
    post(
        client,
        auth,
        "only.rolled",
        "counter",
        [(minute + timedelta(seconds=s), 2) for s in range(0, 60, 10)],
    )
    with get_store(app).write.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM metric_points")).scalar() == 0
    body = query(
        client,
        auth,
        "only.rolled",
        minute + timedelta(seconds=30),
        minute + timedelta(hours=1),
        window="5m",
    )
    assert body["resolution"] == "minute" and body["start"] == isoformat_z(minute)
    assert body["data"][0]["value"] == 12  # the whole minute: its rollup row
