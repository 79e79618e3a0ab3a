"""Dimensions through the API on both backends: tags on every ingest route (each rule, per
item), the series limit, filters of each operator, group-by with 1-3 keys, top-N with an
exact "other", the tag listings, CSV, POST /api/query — and a seeded property test against a
recomputation from the raw points."""

import math
import random
import re
import threading
from datetime import timedelta

import pytest

from app import create_app, shutdown
from app.core.timeutil import isoformat_z, utcnow
from app.db import dimensions, get_store
from tests.helpers import new_key
from tests.test_query_property import OPERATIONS, assert_same, expected_series

pytestmark = pytest.mark.points

BATCH = "/api/metrics/batch"
DAY = {"window": "1d", "fill": "none"}


def post_points(client, auth, name, kind, points):
    """points: [(tags or None, value, recorded_at or None)] in one batch."""
    items = []
    for tags, value, moment in points:
        item = {"name": name, "type": kind, "value": value}
        if tags is not None:
            item["tags"] = tags
        if moment is not None:
            item["recorded_at"] = isoformat_z(moment)
        items.append(item)
    response = client.post(BATCH, json={"metrics": items}, headers=auth)
    assert response.status_code == 201 and response.get_json()["rejected"] == 0, response.json
    return response


@pytest.fixture
def requests_metric(client, auth):
    """http.requests: 1 (web-1, 200), 2 (web-1, 500), 4 (web-2, 200), 8 untagged, 16 (db,
    no status)."""
    post_points(
        client,
        auth,
        "http.requests",
        "counter",
        [
            ({"host": "web-1", "status": "200"}, 1, None),
            ({"host": "web-1", "status": "500"}, 2, None),
            ({"host": "web-2", "status": "200"}, 4, None),
            (None, 8, None),
            ({"host": "db"}, 16, None),
        ],
    )
    return "http.requests"


def total(client, auth, **params):
    response = client.get(
        "/api/metrics/aggregate",
        query_string={"name": "http.requests", **DAY, **params},
        headers=auth,
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def values(body):
    return sum(p["value"] for p in body["data"])


@pytest.mark.parametrize(
    "tags, field",
    [
        ({"bad key": "x"}, "tags"),
        ({"host": "a,b"}, "tags.host"),
        ({"host": "a\\b"}, "tags.host"),
        ({"host": "a\x07b"}, "tags.host"),
        ({"host": "x" * 256}, "tags.host"),
        ({"host": ""}, "tags.host"),
        ({"host": 500}, "tags.host"),
        ({"k" * 65: "x"}, "tags"),
        ({f"k{i}": "v" for i in range(17)}, "tags"),
        (["host", "web"], "tags"),
    ],
)
def test_a_bad_tag_is_refused_naming_it_per_item(client, auth, tags, field):
    items = [
        {"name": "t.good", "type": "counter", "tags": {"host": "web-1"}},
        {"name": "t.bad", "type": "counter", "tags": tags},
    ]
    body = client.post(BATCH, json={"metrics": items}, headers=auth).get_json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    (error,) = body["errors"]
    assert error["index"] == 1 and error["code"] == "VALIDATION_ERROR"
    assert field in error["details"] and field in error["message"]
    single = client.post("/api/metrics/counter", json={"name": "t.bad", "tags": tags}, headers=auth)
    assert single.status_code == 400 and field in single.get_json()["error"]["details"]


def test_tags_at_their_bounds_are_taken(client, auth):
    tags = {"k" * 64: "x" * 255, **{f"k{i}": "v" for i in range(15)}}
    response = client.post(
        "/api/metrics/value", json={"name": "t.edge", "value": 1, "tags": tags}, headers=auth
    )
    assert response.status_code == 201
    form = client.post(
        "/api/metrics/value", data="name=t.form&value=2&tags=host:a,url:http://x", headers=auth
    )
    assert form.status_code == 201
    listed = client.get("/api/metrics/t.form/tags/url", headers=auth).get_json()
    assert listed["data"] == [{"value": "http://x", "series": 1}]


def test_filters_of_each_operator_with_missing_keys_as_empty(client, auth, requests_metric):
    assert values(total(client, auth)) == 31
    assert values(total(client, auth, filter="host=web-1")) == 3
    assert values(total(client, auth, filter="host!=web-1")) == 28
    assert values(total(client, auth, filter="host=~web-.*")) == 7
    assert values(total(client, auth, filter="host!~web-.*")) == 24
    assert values(total(client, auth, filter="status=")) == 24  # no status: the "" value
    assert values(total(client, auth, filter=["host=web-1", "status!=200"])) == 2
    assert values(total(client, auth, filter="host=nowhere")) == 0
    assert values(total(client, auth, filter="host=~web")) == 0  # a full match, not a search
    bad = client.get(
        "/api/metrics/aggregate",
        query_string={"name": "http.requests", "filter": "host=~("},
        headers=auth,
    )
    assert bad.status_code == 400 and "filter" in bad.get_json()["error"]["details"]


def test_group_by_one_two_and_three_keys(client, auth, requests_metric):
    by_host = total(client, auth, group_by="host")
    assert "data" not in by_host
    assert [(s["tags"], sum(p["value"] for p in s["data"])) for s in by_host["series"]] == [
        ({"host": "db"}, 16),
        ({"host": ""}, 8),
        ({"host": "web-2"}, 4),
        ({"host": "web-1"}, 3),
    ]  # the largest total first
    two = total(client, auth, group_by="host,status")["series"]
    assert len(two) == 5 and two[0]["tags"] == {"host": "db", "status": ""}
    three = total(client, auth, group_by="host,status,zone")["series"]
    assert all(s["tags"]["zone"] == "" for s in three) and len(three) == 5
    too_many = client.get(
        "/api/metrics/aggregate",
        query_string={"name": "http.requests", "group_by": "a,b,c,d"},
        headers=auth,
    )
    assert too_many.status_code == 400


@pytest.mark.parametrize("operation", OPERATIONS)
def test_top_n_keeps_the_tags_and_an_exact_other(client, auth, operation):
    rng = random.Random(7)
    points = [
        ({"host": f"h{rng.randint(0, 9)}"}, round(rng.uniform(-50, 50), 2), None)
        for _ in range(120)
    ]
    post_points(client, auth, "lat", "value", points)
    query = {"name": "lat", "operation": operation, **DAY}
    whole = client.get("/api/metrics/aggregate", query_string=query, headers=auth).get_json()
    top = client.get(
        "/api/metrics/aggregate", query_string={**query, "group_by": "host", "top": 3}, headers=auth
    ).get_json()["series"]
    assert len(top) == 4 and top[-1] == {"tags": None, "other": True, "data": top[-1]["data"]}
    groups = [s["data"][0]["value"] for s in top]
    ranked = groups[:3]
    assert ranked == sorted(ranked, reverse=operation != "min")
    everything = whole["data"][0]["value"]
    combine = {"sum": math.fsum, "count": sum, "min": min, "max": max}
    if operation in combine:
        assert math.isclose(combine[operation](groups), everything, rel_tol=1e-9)
    else:  # avg: the groups' averages weighed by their counts give the whole one
        counted = {"name": "lat", "operation": "count", "group_by": "host", **DAY}
        counts = client.get("/api/metrics/aggregate", query_string=counted, headers=auth)
        by_tags = {str(s["tags"]): s["data"][0]["value"] for s in counts.get_json()["series"]}
        kept = [by_tags[str(s["tags"])] for s in top[:3]]
        weights = [*kept, sum(by_tags.values()) - sum(kept)]
        weighed = math.fsum(avg * n for avg, n in zip(groups, weights, strict=True))
        assert math.isclose(weighed / sum(weights), everything, rel_tol=1e-9)


def test_series_limit_exact_boundary_and_per_item(make_app):
    app = make_app(METRICS_MAX_SERIES_PER_METRIC=3)
    client, auth = app.test_client(), {"X-API-Key": new_key(app)}
    items = [{"name": "s.lim", "type": "counter"}] + [
        {"name": "s.lim", "type": "counter", "tags": {"n": str(i)}} for i in range(8)
    ]
    body = client.post(BATCH, json={"metrics": items}, headers=auth).get_json()
    assert (body["accepted"], body["rejected"]) == (3, 6)  # the untagged series counts
    # first come, first made: the new series past the limit are the ones refused
    assert [(e["index"], e["code"]) for e in body["errors"]] == [
        (i, "SERIES_LIMIT_EXCEEDED") for i in range(3, 9)
    ]
    again = client.post(
        "/api/metrics/counter", json={"name": "s.lim", "tags": {"n": "0"}}, headers=auth
    )
    assert again.status_code == 201  # an existing series is always taken
    refused = client.post(
        "/api/metrics/counter", json={"name": "s.lim", "tags": {"n": "9"}}, headers=auth
    )
    assert refused.status_code == 422
    assert refused.get_json()["error"]["code"] == "SERIES_LIMIT_EXCEEDED"
    listed = client.get("/api/metrics", query_string={"prefix": "s.lim"}, headers=auth).get_json()
    assert listed["data"][0]["series"] == 3


def test_writers_racing_past_the_series_limit_never_pass_it(mysql_url):
    """Four servers' writers, each with its own new tag values: the limit holds exactly."""
    apps = [
        create_app(
            {"TESTING": True, "DATABASE_URL": mysql_url, "METRICS_MAX_SERIES_PER_METRIC": 20}
        )
        for _ in range(4)
    ]
    key = new_key(apps[0])
    accepted = []

    def writer(app, index):
        client = app.test_client()
        for n in range(15):
            tags = {"writer": str(index), "n": str(n)}
            response = client.post(
                "/api/metrics/counter",
                json={"name": "race.series", "tags": tags},
                headers={"X-API-Key": key},
            )
            accepted.append(response.status_code)

    threads = [threading.Thread(target=writer, args=(app, i)) for i, app in enumerate(apps)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    store = get_store(apps[0])
    metric = store.metric(1, "race.series")
    assert store.series_counts([metric.id])[metric.id] == 20
    assert accepted.count(201) == 20 and accepted.count(422) == 40
    for app in apps:
        shutdown(app)


def test_tag_listings_from_the_catalogue_with_prefixes_and_paging(client, auth):
    post_points(
        client,
        auth,
        "list.me",
        "counter",
        [({"host": f"web-{i:02d}", "zone": "eu" if i % 2 else "us"}, 1, None) for i in range(12)],
    )
    keys = client.get("/api/metrics/list.me/tags", headers=auth).get_json()
    assert keys == {
        "success": True,
        "metric": "list.me",
        "tags": [{"key": "host", "values": 12}, {"key": "zone", "values": 2}],
    }
    zone = client.get("/api/metrics/list.me/tags/zone", headers=auth).get_json()
    assert zone["data"] == [{"value": "eu", "series": 6}, {"value": "us", "series": 6}]
    page = client.get(
        "/api/metrics/list.me/tags/host", query_string={"prefix": "web-1", "limit": 2}, headers=auth
    ).get_json()
    assert [v["value"] for v in page["data"]] == ["web-10", "web-11"] and not page["has_more"]
    first = client.get(
        "/api/metrics/list.me/tags/host", query_string={"limit": 5, "offset": 5}, headers=auth
    ).get_json()
    assert [v["value"] for v in first["data"]] == [f"web-{i:02d}" for i in range(5, 10)]
    assert first["has_more"] is True
    assert client.get("/api/metrics/none.here/tags", headers=auth).status_code == 404
    assert client.get("/api/metrics/list.me/tags/9bad", headers=auth).status_code == 400


def test_csv_with_group_by_has_a_column_per_group(client, auth, requests_metric):
    response = client.get(
        "/api/metrics/http.requests",
        query_string={"interval": "day", "group_by": "host", "top": 2, "format": "csv"},
        headers=auth,
    )
    head, *rows = response.get_data(as_text=True).splitlines()
    assert head == "timestamp,host=db,host=,other"
    assert rows[-1].split(",")[1:] == ["16", "8", "7"]
    several = client.get(
        "/api/metrics/aggregate",
        query_string={"name": "http.requests,http.requests2", "group_by": "host"},
        headers=auth,
    )
    assert several.status_code == 404


def test_post_query_answers_as_the_get_routes(client, auth, requests_metric):
    get = total(client, auth, filter="host!=db", group_by="status", top=1)
    body = {
        "metrics": ["http.requests"],
        "window": "1d",
        "fill": "none",
        "filters": ["host!=db"],
        "group_by": ["status"],
        "top": 1,
    }
    posted = client.post("/api/query", json=body, headers=auth).get_json()
    for answer in (get, posted):
        answer.pop("start")
        answer.pop("end")
    assert posted == get
    unknown = client.post("/api/query", json={**body, "topp": 2}, headers=auth)
    assert unknown.status_code == 400 and "topp" in unknown.get_json()["error"]["details"]


def test_a_query_counts_its_groups_against_the_points_bound(make_app):
    app = make_app(METRICS_MAX_QUERY_POINTS=5)
    client, auth = app.test_client(), {"X-API-Key": new_key(app)}
    post_points(client, auth, "g", "counter", [({"h": str(i)}, 1, None) for i in range(6)])
    grouped = client.get(
        "/api/metrics/g", query_string={"interval": "day", "group_by": "h"}, headers=auth
    )
    assert grouped.get_json()["error"]["code"] == "QUERY_TOO_LARGE"
    topped = client.get(
        "/api/metrics/g",
        query_string={
            "interval": "day",
            "group_by": "h",
            "top": 1,
            "start": isoformat_z(utcnow() - timedelta(hours=1)),
        },
        headers=auth,
    )
    assert topped.status_code == 200 and len(topped.get_json()["series"]) == 2


def test_a_metric_that_gets_its_first_tag_keeps_its_untagged_history(client, auth):
    earlier = utcnow() - timedelta(hours=3)
    post_points(client, auth, "late.tags", "counter", [(None, 5, earlier)])
    post_points(client, auth, "late.tags", "counter", [({"host": "a"}, 3, None)])
    query = {"name": "late.tags", "operation": "sum", **DAY}
    grouped = client.get(
        "/api/metrics/aggregate", query_string={**query, "group_by": "host"}, headers=auth
    ).get_json()["series"]
    assert [(s["tags"]["host"], sum(p["value"] for p in s["data"])) for s in grouped] == [
        ("", 5),
        ("a", 3),
    ]


SEEDS = range(3)


@pytest.mark.parametrize("group_statements", [dimensions.GROUP_STATEMENTS, 0])
@pytest.mark.parametrize("seed", SEEDS)
def test_tagged_answers_equal_a_recomputation_from_raw_points(
    client, auth, seed, group_statements, monkeypatch
):
    """Groups added up by the database (a statement each), and merged here from each series'
    buckets (past GROUP_STATEMENTS groups), give the same answers."""
    monkeypatch.setattr(dimensions, "GROUP_STATEMENTS", group_statements)
    rng = random.Random(seed)
    now = utcnow()
    hosts, zones = ["a", "b", "c"], ["eu", "us"]
    points = []
    for _ in range(rng.randint(80, 160)):
        tags = {}
        if rng.random() < 0.8:
            tags["host"] = rng.choice(hosts)
        if rng.random() < 0.5:
            tags["zone"] = rng.choice(zones)
        moment = now - timedelta(seconds=rng.uniform(60, 4 * 86400))
        points.append((tags or None, round(rng.uniform(-100, 100), 3), moment))
    name = f"prop.tags.{seed}"
    post_points(client, auth, name, "value", points)
    filters = rng.choice([[], ["host=a"], ["host!=b"], ["zone=~e.*"], ["host=", "zone!=us"]])
    group_by = rng.choice([[], ["host"], ["zone", "host"]])
    start, end = now - timedelta(days=4), now
    for window, width in (("1h", 3600), ("1d", 86400)):
        for operation in OPERATIONS:
            query = {
                "name": name,
                "operation": operation,
                "window": window,
                "start": isoformat_z(start),
                "end": isoformat_z(end),
                "filter": filters,
                "group_by": ",".join(group_by),
            }
            body = client.get("/api/metrics/aggregate", query_string=query, headers=auth).get_json()
            kept = [
                (t or {}, v, m) for t, v, m in points if all(_passes(f, t or {}) for f in filters)
            ]
            groups = {}
            for tags, value, moment in kept:
                key = tuple(tags.get(k, "") for k in group_by)
                groups.setdefault(key, []).append((moment, value))
            answered = body["series"] if group_by else [{"tags": None, "data": body["data"]}]
            if not group_by:
                groups = {(): [(m, v) for _, v, m in kept]}
            assert len(answered) == len(groups), (filters, group_by)
            for group in answered:
                key = tuple((group["tags"] or {}).get(k, "") for k in group_by)
                actual = [(p["timestamp"], p["value"]) for p in group["data"]]
                expected = expected_series(groups[key], start, end, width, operation)
                assert_same(actual, expected, operation, (seed, filters, group_by, key))


def _passes(text, tags):
    for op in ("=~", "!~", "!=", "="):
        if op in text:
            key, value = text.split(op, 1)
            have = tags.get(key, "")
            return {
                "=": have == value,
                "!=": have != value,
                "=~": re.fullmatch(value, have) is not None,
                "!~": re.fullmatch(value, have) is None,
            }[op]
    raise AssertionError(text)
