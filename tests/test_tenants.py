"""Tenants on both backends: a cross-tenant matrix (two tenants owning the same names; every
route and method with A's keys against B's data answers as for a missing object, and B's rows
are unchanged in the database), key management over HTTP, per-tenant limits (metrics, series,
points a minute) with one tenant's exhaustion leaving the other untouched and concurrent
writers never past a limit, /metrics per tenant, and the upgrade that puts what exists into
tenant `default`."""

import os
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from app import create_app, shutdown
from app.api.auth import create_key, generate_key, hash_key
from app.core.stathat import generate_stat_key
from app.core.timeutil import isoformat_z, utcnow
from app.db import get_store
from app.db.migrate import migrate
from app.db.schema import api_keys, metric_points, metrics, series, stat_keys
from tests.harness import drop_database, recreate_database
from tests.helpers import ISSUED_KEYS, MYSQL_SERVER_URL, stored_points

COUNTER, VALUE, BATCH = "/api/metrics/counter", "/api/metrics/value", "/api/metrics/batch"
AGGREGATE = "/api/metrics/aggregate"
DAY = {"window": "1d", "fill": "none"}


def make_tenant(app, name, **limits):
    """A new tenant with its own limits; its id."""
    return get_store(app).create_tenant(name, utcnow(), limits).id


def key_of(app, tenant_id, scopes="read,write", name="tests"):
    """(headers, key id) of a new key in ``tenant_id``."""
    raw, key_id = create_key(get_store(app), name, None, scopes, tenant_id)
    ISSUED_KEYS.append(raw)
    return {"X-API-Key": raw}, key_id


def ok(response, status=201):
    assert response.status_code == status, response.get_json()
    return response.get_json()


def tenant_rows(app, tenant_id):
    """Everything of a tenant in the database, as comparable rows."""
    queries = {
        "metrics": "SELECT id, name, type, deleted_at, tagged FROM metrics WHERE tenant_id = :t",
        "points": "SELECT p.metric_id, p.series_id, p.recorded_at, p.value FROM metric_points p "
        "JOIN metrics m ON m.id = p.metric_id WHERE m.tenant_id = :t",
        "series": "SELECT s.metric_id, s.series_id, s.tags FROM series s "
        "JOIN metrics m ON m.id = s.metric_id WHERE m.tenant_id = :t",
        "rollups": "SELECT r.metric_id, r.bucket, r.n, r.vmin, r.vmax FROM metric_rollups_minute r "
        "JOIN metrics m ON m.id = r.metric_id WHERE m.tenant_id = :t",
        "keys": "SELECT id, scopes, rate_limit, revoked_at FROM api_keys WHERE tenant_id = :t",
        "stat_keys": "SELECT key_hash, metric FROM stat_keys WHERE tenant_id = :t",
        "receipts": "SELECT r.scope_id, r.idem_key, r.status FROM idempotency_keys r "
        "JOIN api_keys k ON k.id = r.scope_id WHERE k.tenant_id = :t",
        "tenant": "SELECT name, max_metrics, max_series, points_per_minute, series_count "
        "FROM tenants WHERE id = :t",
    }
    with get_store(app).write.connect() as conn:
        return {
            what: sorted(tuple(map(str, row)) for row in conn.execute(text(sql), {"t": tenant_id}))
            for what, sql in queries.items()
        }


@pytest.fixture
def tenants(app, client):
    """Tenant A (`default`) and B (`team-b`) with the same name `shared` of different types,
    and B's `b.only` (tagged) and stat key; B's rows as they stood before A acted."""
    b = make_tenant(app, "team-b")
    a_auth, a_key = key_of(app, 1)
    a_admin, _ = key_of(app, 1, "admin")
    b_auth, b_key = key_of(app, b)
    b_admin, _ = key_of(app, b, "admin")
    ok(client.post(VALUE, json={"name": "shared", "value": 1.5}, headers=a_auth))
    ok(client.post(COUNTER, json={"name": "shared", "value": 5}, headers=b_auth))
    tagged = {"name": "b.only", "value": 7, "tags": {"host": "b1"}}
    ok(client.post(VALUE, json=tagged, headers=b_auth))
    same = {"name": "twice", "value": 2}
    idem = {"Idempotency-Key": "same-key"}
    ok(client.post(COUNTER, json=same, headers={**b_auth, **idem}))
    stat_key = generate_stat_key()
    get_store(app).create_stat_key(b, hash_key(stat_key), stat_key[:8], "shared", utcnow())
    return {
        "a": a_auth, "a_admin": a_admin, "a_key": a_key, "b": b_auth, "b_admin": b_admin,
        "b_id": b, "b_key": b_key, "stat_key": stat_key, "b_rows": tenant_rows(app, b),
    }  # fmt: skip


def missing_like(client, auth, name, path, **query):
    """The answer for ``name`` equals the answer for a never-made name (404, same shape)."""
    got = client.get(path.format(name=name), query_string=query, headers=auth)
    never = client.get(path.format(name="never.made"), query_string=query, headers=auth)
    assert got.status_code == never.status_code == 404, got.get_json()
    body, other = got.get_json(), never.get_json()
    assert body["error"]["code"] == "METRIC_NOT_FOUND"
    assert str(body).replace(name, "never.made") == str(other)


def test_a_reads_nothing_of_b(client, tenants):
    a = tenants["a"]
    for path, query in [
        (AGGREGATE, {"name": "{name}", **DAY}),
        (AGGREGATE, {"name": "{name}", **DAY, "format": "csv"}),
        (AGGREGATE, {"name": "{name}", **DAY, "filter": "host=b1"}),
        (AGGREGATE, {"name": "{name}", **DAY, "group_by": "host"}),
        ("/api/metrics/{name}", DAY),
        ("/api/metrics/{name}/tags", {}),
        ("/api/metrics/{name}/tags/host", {}),
    ]:
        query = {k: v.format(name="b.only") if k == "name" else v for k, v in query.items()}
        if "name" in query:
            got = client.get(path, query_string=query, headers=a)
            never = client.get(path, query_string={**query, "name": "never.made"}, headers=a)
            assert got.status_code == never.status_code == 404, got.data
            assert got.data.replace(b"b.only", b"never.made") == never.data
        else:
            missing_like(client, a, "b.only", path, **query)
    posted = client.post("/api/query", json={"metrics": ["b.only"], **DAY}, headers=a)
    assert posted.status_code == 404 and posted.json["error"]["code"] == "METRIC_NOT_FOUND"
    listing = ok(client.get("/api/metrics", headers=a), 200)["data"]
    assert [metric["name"] for metric in listing] == ["shared"]
    by_prefix = client.get("/api/metrics", query_string={"prefix": "b."}, headers=a)
    assert ok(by_prefix, 200)["data"] == []
    # the name both own: A's own type and value, none of B's series
    mine = ok(client.get(AGGREGATE, query_string={"name": "shared", **DAY}, headers=a), 200)
    assert mine["type"] == "value" and [p["value"] for p in mine["data"]] == [1.5]
    assert ok(client.get("/api/metrics/shared/tags", headers=a), 200)["tags"] == []
    limits = ok(client.get("/api/limits", headers=a), 200)
    assert limits["tenant"] == "default"
    assert ok(client.get("/api/limits", headers=tenants["b"]), 200)["tenant"] == "team-b"


def test_a_changes_nothing_of_b(app, client, tenants):
    a, a_admin = tenants["a"], tenants["a_admin"]
    deleted = client.delete("/api/metrics/b.only", headers=a)
    assert deleted.status_code == 404 and deleted.json["error"]["code"] == "METRIC_NOT_FOUND"
    # `shared` is A's value metric: a counter is refused by A's type, not B's
    mismatch = client.post(COUNTER, json={"name": "shared"}, headers=a)
    assert mismatch.status_code == 409 and "value metric" in mismatch.json["error"]["message"]
    # A writing B's names makes A's own metrics
    ok(client.post(COUNTER, json={"name": "b.only", "tags": {"host": "b1"}}, headers=a))
    batch = {"metrics": [{"name": "b.only", "type": "counter"}, {"name": "twice",
             "type": "counter", "value": 3}]}  # fmt: skip
    assert ok(client.post(BATCH, json=batch, headers=a))["accepted"] == 2
    # the same Idempotency-Key and body as B's: A's own first answer, never B's replay
    again = client.post(
        COUNTER, json={"name": "twice", "value": 2}, headers={**a, "Idempotency-Key": "same-key"}
    )
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    # StatHat: B's stat key with A's key is unknown; A's /ez writes A's metric
    for route, extra in (("/c", {"count": "1"}), ("/v", {"value": "4"})):
        answer = client.post(
            route, data={"key": tenants["stat_key"], "ukey": a["X-API-Key"], **extra}
        )
        assert answer.status_code == 404 and answer.json == {
            "status": 404,
            "msg": "unknown stat key",
        }
    ez = client.post("/ez", json={"ezkey": a["X-API-Key"], "stat": "ez.a", "count": 1})
    assert ez.status_code == 200, ez.json
    # key management: B's key ids are not A's to see or change
    b_key = tenants["b_key"]
    listed = ok(client.get("/api/keys", headers=a_admin), 200)["data"]
    assert b_key not in [key["id"] for key in listed] and len(listed) == 2
    for method, body in (("patch", {"scope": "read"}), ("delete", None)):
        answer = getattr(client, method)(f"/api/keys/{b_key}", json=body, headers=a_admin)
        assert answer.status_code == 404 and answer.json["error"]["code"] == "NOT_FOUND"
    assert tenant_rows(app, tenants["b_id"]) == tenants["b_rows"]
    # and B still reads exactly its own
    b = tenants["b"]
    own = ok(client.get(AGGREGATE, query_string={"name": "b.only", **DAY}, headers=b), 200)
    assert [p["value"] for p in own["data"]] == [7]
    shared = ok(client.get(AGGREGATE, query_string={"name": "shared", **DAY}, headers=b), 200)
    assert shared["type"] == "counter" and [p["value"] for p in shared["data"]] == [5]
    counted = client.post("/c", data={"key": tenants["stat_key"], "ukey": b["X-API-Key"]})
    assert counted.status_code == 200


def test_key_management_over_http(app, client, caplog):
    admin, admin_id = key_of(app, 1, "admin")
    user, _ = key_of(app, 1)
    for method in ("get", "post"):
        refused = getattr(client, method)("/api/keys", json={"name": "x"}, headers=user)
        assert refused.status_code == 403 and refused.json["error"]["code"] == "FORBIDDEN"
    assert client.delete(f"/api/keys/{admin_id}", headers=user).status_code == 403
    with caplog.at_level("INFO"):
        made = ok(client.post("/api/keys", json={"name": "CI", "scope": "read"}, headers=admin))
    ISSUED_KEYS.append(made["key"])
    assert made["key"] not in caplog.text and made["prefix"] in caplog.text
    assert made["key"].startswith(made["prefix"]) and made["scopes"] == ["read"]
    assert made["name"] == "CI" and made["rate_limit"] == 1000
    new = {"X-API-Key": made["key"]}
    assert ok(client.get("/api/limits", headers=new), 200)["rate_limit"] == 1000
    assert client.post(COUNTER, json={"name": "x"}, headers=new).status_code == 403
    listed = ok(client.get("/api/keys", headers=admin), 200)["data"]
    entry = next(key for key in listed if key["id"] == made["id"])
    assert set(entry) == {"id", "prefix", "name", "scopes", "rate_limit", "created_at",
                          "last_used_at", "revoked_at"}  # fmt: skip
    assert entry["revoked_at"] is None and entry["last_used_at"] is not None
    assert made["key"] not in str(listed) and hash_key(made["key"]) not in str(listed)
    changed = client.patch(
        f"/api/keys/{made['id']}", json={"scope": "read,write", "rate_limit": 7}, headers=admin
    )
    assert ok(changed, 200)["scopes"] == ["read", "write"] and changed.json["rate_limit"] == 7
    back = client.patch(f"/api/keys/{made['id']}", json={"rate_limit": None}, headers=admin)
    assert ok(back, 200)["rate_limit"] == 1000 and back.json["scopes"] == ["read", "write"]
    revoked = ok(client.delete(f"/api/keys/{made['id']}", headers=admin), 200)
    assert revoked["revoked_at"] is not None
    with get_store(app).write.connect() as conn:
        row = conn.execute(
            text("SELECT scopes, rate_limit, revoked_at FROM api_keys WHERE id = :i"),
            {"i": made["id"]},
        ).first()
    assert (row.scopes, row.rate_limit) == ("read,write", None) and row.revoked_at is not None
    assert ok(client.delete(f"/api/keys/{made['id']}", headers=admin), 200)["revoked_at"]
    assert client.delete("/api/keys/999999", headers=admin).json["error"]["code"] == "NOT_FOUND"
    assert client.patch("/api/keys/abc", json={}, headers=admin).status_code == 404
    assert client.delete(f"/api/keys/{10**30}", headers=admin).json["error"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x", "scope": "root"}, "scope"),
        ({"name": "x", "scope": "admin,read"}, "scope"),
        ({"name": "x", "rate_limit": 0}, "rate_limit"),
        ({"name": "x", "rate_limit": "10"}, "rate_limit"),
        ({"name": "x", "tenant": "other"}, "tenant"),
        ({"name": "x", "scopes": "read"}, "scopes"),
    ],
)
def test_a_bad_key_body_is_a_400_naming_the_field(app, client, body, field):
    admin, _ = key_of(app, 1, "admin")
    before = len(get_store(app).list_keys())
    answer = client.post("/api/keys", json=body, headers=admin)
    assert answer.status_code == 400, answer.json
    assert answer.json["error"]["code"] == "VALIDATION_ERROR"
    assert field in answer.json["error"]["details"]
    assert len(get_store(app).list_keys()) == before


def test_an_empty_or_unknown_change_is_a_400(app, client):
    admin, admin_id = key_of(app, 1, "admin")
    for body in ({}, {"tenant_id": 2}, {"scope": "everything"}):
        answer = client.patch(f"/api/keys/{admin_id}", json=body, headers=admin)
        assert answer.status_code == 400 and answer.json["error"]["code"] == "VALIDATION_ERROR"


def test_a_tenant_at_its_limits_leaves_the_other_untouched(app, client):
    small = make_tenant(app, "small", max_metrics=2, max_series=3)
    auth, _ = key_of(app, small)
    other, _ = key_of(app, 1)
    ok(client.post(COUNTER, json={"name": "m1"}, headers=auth))
    ok(client.post(COUNTER, json={"name": "m2"}, headers=auth))
    refused = client.post(COUNTER, json={"name": "m3"}, headers=auth)
    assert refused.status_code == 422 and refused.json["error"]["code"] == "METRIC_LIMIT_EXCEEDED"
    assert "2 metrics" in refused.json["error"]["message"]
    ok(client.post(COUNTER, json={"name": "m3"}, headers=other))
    # series: m1 and m2 hold one each (untagged); one more fits, the next does not
    ok(client.post(COUNTER, json={"name": "m1", "tags": {"host": "a"}}, headers=auth))
    refused = client.post(COUNTER, json={"name": "m1", "tags": {"host": "b"}}, headers=auth)
    assert refused.status_code == 422 and refused.json["error"]["code"] == "SERIES_LIMIT_EXCEEDED"
    ok(client.post(COUNTER, json={"name": "m1", "tags": {"host": "b"}}, headers=other))
    assert ok(client.get("/api/limits", headers=auth), 200)["metrics_left"] == 0
    # deleting a metric gives its series and its name back
    ok(client.delete("/api/metrics/m2", headers=auth), 200)
    ok(client.post(COUNTER, json={"name": "m1", "tags": {"host": "b"}}, headers=auth))


def test_points_a_minute_refuse_a_whole_request_and_count_only_valid_items(app, client):
    metered = make_tenant(app, "metered", points_per_minute=5)
    auth, _ = key_of(app, metered)
    other, _ = key_of(app, 1)
    items = [{"name": "p", "type": "counter"}] * 2 + [{"name": "", "type": "counter"}]
    assert ok(client.post(BATCH, json={"metrics": items}, headers=auth))["accepted"] == 2
    four = {"metrics": [{"name": "p", "type": "counter"}] * 4}
    refused = client.post(BATCH, json=four, headers=auth)
    assert refused.status_code == 429 and refused.json["error"]["code"] == "RATE_LIMITED"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "5 points" in refused.json["error"]["message"]
    assert len(stored_points(app, "p")) == 2  # nothing of the refused batch
    ok(client.post(BATCH, json={"metrics": four["metrics"][:3]}, headers=auth))
    single = client.post(COUNTER, json={"name": "p"}, headers=auth)
    assert single.status_code == 429
    ez = client.post("/ez", json={"ezkey": auth["X-API-Key"], "stat": "p", "count": 1})
    assert ez.status_code == 429 and ez.json["status"] == 429 and "Retry-After" in ez.headers
    assert len(stored_points(app, "p")) == 5
    ok(client.post(COUNTER, json={"name": "p"}, headers=other))  # another tenant writes on


def test_a_replay_is_answered_even_over_the_points_budget(app, client):
    metered = make_tenant(app, "metered", points_per_minute=1)
    auth, _ = key_of(app, metered)
    first = client.post(COUNTER, json={"name": "p"}, headers={**auth, "Idempotency-Key": "k1"})
    assert first.status_code == 201
    again = client.post(COUNTER, json={"name": "p"}, headers={**auth, "Idempotency-Key": "k1"})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    fresh = client.post(COUNTER, json={"name": "p"}, headers={**auth, "Idempotency-Key": "k2"})
    assert fresh.status_code == 429


def test_the_points_budget_is_shared_by_every_server_through_redis(make_app, redis_url):
    first, second = make_app(REDIS_URL=redis_url), make_app(REDIS_URL=redis_url)
    metered = make_tenant(first, "metered", points_per_minute=4)
    one, _ = key_of(first, metered)
    two, _ = key_of(first, metered)
    batch = {"metrics": [{"name": "p", "type": "counter"}] * 3}
    ok(first.test_client().post(BATCH, json=batch, headers=one))
    refused = second.test_client().post(BATCH, json={"metrics": batch["metrics"][:2]}, headers=two)
    assert refused.status_code == 429
    ok(second.test_client().post(COUNTER, json={"name": "p"}, headers=two))


def race(count, action):
    """Run ``action(i)`` in ``count`` threads released together; their results."""
    barrier, results = threading.Barrier(count), [None] * count

    def run(i):
        barrier.wait()
        results[i] = action(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_writers_never_pass_a_tenant_limit(app):
    crowded = make_tenant(app, "crowded", max_metrics=5, max_series=6, points_per_minute=30)
    auth, _ = key_of(app, crowded)

    def new_metric(i):
        return app.test_client().post(COUNTER, json={"name": f"m{i}"}, headers=auth).status_code

    statuses = race(12, new_metric)
    assert sorted(statuses) == [201] * 5 + [422] * 7
    assert get_store(app).count_metrics(crowded) == 5
    name = get_store(app).list_metrics(crowded, "", 1, 0)[0].name

    def new_series(i):
        body = {"name": name, "tags": {"n": str(i)}}
        return app.test_client().post(COUNTER, json=body, headers=auth).status_code

    statuses = race(8, new_series)  # five untagged series and room for one more
    usage = {u.tenant.name: u for u in get_store(app).tenant_usage()}["crowded"]
    assert usage.series == 6 and sorted(statuses) == [201] + [422] * 7

    def spend(i):
        body = {"metrics": [{"name": name, "type": "counter"}] * 4}
        return app.test_client().post(BATCH, json=body, headers=auth).status_code

    # 20 valid points were counted above (refused ones too): room for two batches of 4
    statuses = race(10, spend)
    assert sorted(statuses) == [201] * 2 + [429] * 8


def test_metrics_endpoint_shows_each_tenant_beside_its_limits(app, client):
    team = make_tenant(app, "team-b", max_metrics=9)
    auth, _ = key_of(app, team)
    for tags in ({"host": "a"}, {"host": "b"}):
        ok(client.post(COUNTER, json={"name": "m", "tags": tags}, headers=auth))
    text_ = client.get("/metrics").get_data(as_text=True)
    assert 'gf_tenant_metrics{tenant="team-b"} 1.0' in text_
    assert 'gf_tenant_metrics_limit{tenant="team-b"} 9.0' in text_
    assert 'gf_tenant_series{tenant="team-b"} 2.0' in text_
    assert 'gf_tenant_series_limit{tenant="default"} 1e+06' in text_
    assert 'gf_tenant_points_per_minute_limit{tenant="default"} 0.0' in text_
    assert 'gf_tenant_keys{tenant="team-b"} 1.0' in text_


def test_the_cli_makes_tenants_and_their_keys(app, runner, client):
    made = runner.invoke(args=["tenants", "create", "ops", "--max-metrics", "3"])
    assert made.exit_code == 0 and "max_metrics 3" in made.output
    assert runner.invoke(args=["tenants", "create", "ops"]).exit_code != 0
    assert runner.invoke(args=["tenants", "create", "Bad Name"]).exit_code != 0
    updated = runner.invoke(args=["tenants", "update", "ops", "--points-per-minute", "100"])
    assert updated.exit_code == 0 and "points_per_minute 100" in updated.output
    created = runner.invoke(args=["keys", "create", "--name", "ops key", "--tenant", "ops"])
    raw = created.stdout.splitlines()[-1]
    ISSUED_KEYS.append(raw)
    assert ok(client.get("/api/limits", headers={"X-API-Key": raw}), 200)["tenant"] == "ops"
    assert runner.invoke(args=["keys", "create", "--name", "x", "--tenant", "nope"]).exit_code
    listed = runner.invoke(args=["tenants", "list"]).output.splitlines()
    assert listed[0].split("\t")[0] == "name"
    ops = next(line.split("\t") for line in listed if line.startswith("ops\t"))
    assert ops == ["ops", "0", "3", "0", "1000000", "100", "1"]
    keys = runner.invoke(args=["keys", "list"]).output
    assert "\tops\tops key\t" in keys


@pytest.mark.parametrize("backend", ["sqlite", "mysql"])
def test_an_upgrade_puts_everything_into_default_and_changes_nothing_seen(
    backend, tmp_path, monkeypatch
):
    """A database at the migration before tenants, with a metric, its points, a key and a stat
    key, migrated: the same key reads the same answer and the stat key writes on."""
    import app.db.migrate as migrations

    database = f"gf_test_upgrade_{os.getpid()}"
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    else:
        recreate_database(MYSQL_SERVER_URL, database)
        url = f"{MYSQL_SERVER_URL}/{database}"
    everything = migrations.migration_files
    monkeypatch.setattr(
        migrations,
        "migration_files",
        lambda engine: [(v, p) for v, p in everything(engine) if v < "008"],
    )
    old = create_app({"TESTING": True, "DATABASE_URL": url})
    try:
        engine = get_store(old).write
        migrate(engine)
        raw, stat_key, now = generate_key(), generate_stat_key(), utcnow()
        ISSUED_KEYS.append(raw)
        moment = (now - timedelta(minutes=5)).replace(microsecond=0)
        with engine.begin() as conn:  # the columns of 007: written by name, no tenant_id
            for metric, kind in (("old.metric", "counter"), ("Old.Metric", "value")):
                conn.execute(metrics.insert().values(name=metric, type=kind, created_at=now,
                                                     updated_at=now))  # fmt: skip
            ids = dict(conn.execute(select(metrics.c.name, metrics.c.id)).all())
            for metric, value in (("old.metric", 3), ("Old.Metric", 2.5)):
                conn.execute(series.insert().values(
                    metric_id=ids[metric], series_id=0, tags_hash=0, tags="{}", first_seen=now,
                    last_seen=now))  # fmt: skip
                conn.execute(metric_points.insert().values(
                    metric_id=ids[metric], recorded_at=moment, value=value, created_at=now,
                    series_id=0))  # fmt: skip
            conn.execute(api_keys.insert().values(
                name="old key", key_hash=hash_key(raw), prefix=raw[:11], created_at=now,
                scopes="read,write"))  # fmt: skip
            conn.execute(stat_keys.insert().values(
                key_hash=hash_key(stat_key), prefix=stat_key[:8], metric="old.metric",
                created_at=now))  # fmt: skip
    finally:
        shutdown(old)
    monkeypatch.setattr(migrations, "migration_files", everything)
    upgraded = create_app({"TESTING": True, "DATABASE_URL": url})
    try:
        assert migrate(get_store(upgraded).write) == ["008_tenants", "009_alerts"]
        client, auth = upgraded.test_client(), {"X-API-Key": raw}
        end = moment + timedelta(minutes=1)
        query = {"name": "old.metric", "source": "raw", "window": "1m", "fill": "none",
                 "start": isoformat_z(moment), "end": isoformat_z(end)}  # fmt: skip
        answer = ok(client.get(AGGREGATE, query_string=query, headers=auth), 200)
        assert answer["type"] == "counter" and [p["value"] for p in answer["data"]] == [3]
        names = [m["name"] for m in ok(client.get("/api/metrics", headers=auth), 200)["data"]]
        assert names == ["Old.Metric", "old.metric"]
        assert ok(client.get("/api/limits", headers=auth), 200)["tenant"] == "default"
        assert client.post("/c", data={"key": stat_key, "ukey": raw}).status_code == 200
        assert len(stored_points(upgraded, "old.metric")) == 2
        ok(client.post(COUNTER, json={"name": "new.one"}, headers=auth))
        usage = get_store(upgraded).tenant_usage()
        assert [(u.tenant.name, u.metrics, u.series, u.keys) for u in usage] == [
            ("default", 3, 3, 1)
        ]
    finally:
        shutdown(upgraded)
        if backend == "mysql":
            drop_database(MYSQL_SERVER_URL, database)
