"""Requests an attacker sends, each refused or bounded before it costs anything: huge queries,
StatHat fan-outs past the batch limit, metric floods, deep JSON, numbers past any time, and
stat-key probing — on both backends."""

from datetime import timedelta

import pytest

from app.api.auth import create_key
from app.blueprints.query import _csv as csv_answer
from app.core.timeutil import isoformat_z, utcnow
from app.db import get_store
from tests.helpers import new_key

HUGE = "1" + "0" * 400


def names(count, prefix="n"):
    return [f"{prefix}{i}" for i in range(count)]


def assert_error(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == code


def test_more_names_than_allowed_is_query_too_large_before_any_lookup(app, client, auth):
    query = {"name": ",".join(names(101)), "window": "1h"}
    response = client.get("/api/metrics/aggregate", query_string=query, headers=auth)
    assert_error(response, 400, "QUERY_TOO_LARGE")
    assert "name" in response.get_json()["error"]["details"]


def test_names_times_buckets_past_the_points_limit_is_query_too_large(make_app):
    app = make_app(METRICS_MAX_QUERY_POINTS=100)
    client, auth = app.test_client(), {"X-API-Key": new_key(app)}
    for name in ("a", "b"):
        client.post("/api/metrics/counter", json={"name": name}, headers=auth)
    end = utcnow()
    span = {"start": isoformat_z(end - timedelta(minutes=60)), "end": isoformat_z(end)}
    query = {"name": "a,b", "window": "1m", **span}
    both = client.get("/api/metrics/aggregate", query_string=query, headers=auth)
    assert_error(both, 400, "QUERY_TOO_LARGE")
    assert "points" in both.get_json()["error"]["details"]
    csv_query = {"format": "csv", "interval": "minute", "from": span["start"], "to": span["end"]}
    as_csv = client.get("/api/metrics/a,b", query_string=csv_query, headers=auth)
    assert_error(as_csv, 400, "QUERY_TOO_LARGE")  # never the work: CSV is bounded too
    one = client.get("/api/metrics/aggregate", query_string={"name": "a", "window": "1m", **span},
                     headers=auth)  # fmt: skip
    assert one.status_code == 200 and len(one.get_json()["data"]) <= 61


def test_a_csv_answer_is_streamed_row_by_row(app, client, auth):
    client.post("/api/metrics/counter", json={"name": "streamed"}, headers=auth)
    end = isoformat_z(utcnow())
    query = {"interval": "1m", "to": end}
    as_json = client.get("/api/metrics/streamed", query_string=query, headers=auth).get_json()
    response = client.get(
        "/api/metrics/streamed", query_string={**query, "format": "csv"}, headers=auth
    )
    assert response.status_code == 200
    lines = response.get_data(as_text=True).splitlines()
    assert lines[0] == "timestamp,value" and len(lines) == len(as_json["data"]) + 1
    assert lines[-1] == f"{as_json['data'][-1]['timestamp']},1"
    with app.test_request_context():
        answer = csv_answer({"streamed": as_json["data"] * 50}, (), "raw")
        assert not answer.is_sequence  # produced as it is sent, never one string in memory


@pytest.mark.parametrize(
    "params",
    [
        {"start": HUGE},
        {"end": HUGE},
        {"start": "-" + HUGE},
        {"start": "9999-12-31T23:59:30", "end": "9999-12-31T23:59:59"},
        {"end": "1969-12-31T00:00:00Z"},
    ],
)
def test_times_outside_what_a_query_can_name_are_400(client, auth, params):
    client.post("/api/metrics/counter", json={"name": "m"}, headers=auth)
    response = client.get("/api/metrics/aggregate", query_string={"name": "m", **params},
                          headers=auth)  # fmt: skip
    assert_error(response, 400, "VALIDATION_ERROR")
    assert set(response.get_json()["error"]["details"]) <= {"start", "end"}
    readme_form = {"from": params.get("start", "1"), "to": params.get("end", HUGE)}
    assert client.get("/api/metrics/m", query_string=readme_form, headers=auth).status_code == 400


def test_an_ez_timestamp_past_any_time_is_400(client, api_key):
    response = client.get(
        "/ez", query_string={"ezkey": api_key, "stat": "m", "count": 1, "t": HUGE}
    )
    assert response.status_code == 400 and response.get_json()["status"] == 400


@pytest.mark.parametrize("route", ["/ez", "/c", "/api/metrics/batch", "/api/metrics/counter"])
def test_deeply_nested_json_is_refused_on_every_route(client, auth, route):
    deep = "[" * 10_000 + "]" * 10_000
    field = "data" if route == "/ez" else "key" if route == "/c" else "metrics"
    body = '{"ezkey": "K", "%s": %s}' % (field, deep)  # noqa: UP031 - JSON braces
    response = client.post(route, data=body, headers=auth)
    assert response.status_code == 400
    shallow = '{"%s": %s}' % (field, "[" * 20 + "]" * 20)  # noqa: UP031
    assert client.post(route, data=shallow, headers=auth).status_code in (400, 404)


def test_a_stathat_fan_out_counts_against_the_batch_limit(make_app):
    app = make_app(METRICS_MAX_BATCH=10)
    client, key = app.test_client(), new_key(app)
    wide = "fp~" + ",".join(str(i) for i in range(11))
    response = client.post("/ez", data={"ezkey": key, "stat": wide, "count": 1})
    assert response.status_code == 400
    assert response.get_json()["msg"].startswith("BATCH_TOO_LARGE")
    items = [{"stat": f"s{i}~a,b", "count": 1} for i in range(6)]  # 12 points after fan-out
    json_body = client.post("/ez", json={"ezkey": key, "data": items})
    assert json_body.status_code == 400 and json_body.get_json()["msg"].startswith(
        "BATCH_TOO_LARGE"
    )
    fitting = client.post("/ez", data={"ezkey": key, "stat": "fp~" + ",".join("abcdefghij")})
    assert fitting.status_code == 200
    listed = client.get("/api/metrics", query_string={"prefix": "fp_"}, headers={"X-API-Key": key})
    assert len(listed.get_json()["data"]) == 10


def test_new_metrics_past_the_limit_are_refused_per_item(make_app):
    app = make_app(METRICS_MAX_METRICS=3)
    client, auth = app.test_client(), {"X-API-Key": new_key(app)}
    items = [{"name": name, "type": "counter"} for name in names(5)]
    batch = client.post("/api/metrics/batch", json={"metrics": items}, headers=auth)
    body = batch.get_json()
    assert batch.status_code == 201 and (body["accepted"], body["rejected"]) == (3, 2)
    assert [(e["index"], e["code"]) for e in body["errors"]] == [
        (3, "METRIC_LIMIT_EXCEEDED"),
        (4, "METRIC_LIMIT_EXCEEDED"),
    ]
    single = client.post("/api/metrics/counter", json={"name": "one.more"}, headers=auth)
    assert_error(single, 422, "METRIC_LIMIT_EXCEEDED")
    ez = client.get("/ez", query_string={"ezkey": auth["X-API-Key"], "stat": "ez.more"})
    assert ez.status_code == 422 and ez.get_json()["msg"].startswith("METRIC_LIMIT_EXCEEDED")
    assert client.post("/api/metrics/counter", json={"name": "n0"}, headers=auth).status_code == 201
    assert client.delete("/api/metrics/n0", headers=auth).status_code == 200  # deleted: room
    again = client.post("/api/metrics/counter", json={"name": "one.more"}, headers=auth)
    assert again.status_code == 201


def test_a_listing_pages_by_name_with_after(app, client, auth):
    for name in names(5, "page."):
        client.post("/api/metrics/counter", json={"name": name}, headers=auth)
    first = client.get("/api/metrics", query_string={"limit": 2}, headers=auth).get_json()
    assert [m["name"] for m in first["data"]] == ["page.0", "page.1"]
    assert first["has_more"] and first["next_after"] == "page.1"
    seen = [m["name"] for m in first["data"]]
    after = first["next_after"]
    while after:
        page = client.get(
            "/api/metrics", query_string={"limit": 2, "after": after}, headers=auth
        ).get_json()
        seen += [m["name"] for m in page["data"]]
        after = page.get("next_after")
        assert ("next_after" in page) == page["has_more"]
    assert seen == names(5, "page.")
    bad = client.get("/api/metrics", query_string={"after": "no spaces"}, headers=auth)
    assert_error(bad, 400, "VALIDATION_ERROR")


def test_probing_stat_keys_is_limited_like_bad_api_keys(make_app):
    app = make_app(AUTH_FAILURE_LIMIT=5)
    client = app.test_client()
    probes = [client.get("/c", query_string={"key": "gs_" + f"{i:043d}"}) for i in range(8)]
    assert [p.status_code for p in probes] == [404] * 5 + [429] * 3
    assert probes[-1].headers["Retry-After"]
    raw, _ = create_key(get_store(app), "ok", None, "read,write")
    exempt = client.get("/c", query_string={"key": "gs_" + "0" * 43, "ukey": raw})
    assert exempt.status_code == 404  # an active API key is never refused by this limit
