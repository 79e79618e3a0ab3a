"""GET /api/metrics/aggregate, /api/metrics/<name> and /api/metrics on both backends."""

from datetime import UTC, datetime, timedelta

import pytest

from app.core.timeutil import EPOCH, isoformat_z
from tests.helpers import new_key

pytestmark = pytest.mark.points


def today_at(hour, minute=0, second=0, microsecond=0, days_ago=1):
    """A time on a day fully inside the accepted ingest window."""
    day = datetime.now(UTC).replace(tzinfo=None).date() - timedelta(days=days_ago)
    return datetime(day.year, day.month, day.day, hour, minute, second, microsecond)


def write(client, auth, kind, name, points):
    items = [
        {"name": name, "type": kind, "value": v, "recorded_at": isoformat_z(t)} for t, v in points
    ]
    response = client.post("/api/metrics/batch", json={"metrics": items}, headers=auth)
    assert response.status_code == 201 and response.get_json()["rejected"] == 0


def get(client, auth, path, **params):
    return client.get(path, query_string=params, headers=auth)


def aggregate(client, auth, name, start, end, **params):
    """GET /api/metrics/aggregate for ``name`` over [start, end)."""
    span = {"start": isoformat_z(start), "end": isoformat_z(end)}
    return get(client, auth, "/api/metrics/aggregate", name=name, **span, **params)


@pytest.fixture
def day():
    return today_at(0)


@pytest.fixture
def hits(client, auth, day):
    """A counter with points in hours 0, 1 and 3 of ``day``."""
    write(
        client,
        auth,
        "counter",
        "api.hits",
        [
            (day + timedelta(minutes=5), 2),
            (day + timedelta(minutes=59, seconds=59, microseconds=999999), 3),
            (day + timedelta(hours=1), 10),
            (day + timedelta(hours=3, minutes=30), 1.5),
        ],
    )
    return "api.hits"


@pytest.fixture
def latency(client, auth, day):
    write(
        client,
        auth,
        "value",
        "api.latency",
        [(day + timedelta(minutes=1), 100), (day + timedelta(minutes=2), 50)],
    )
    return "api.latency"


def test_hourly_sum_returns_every_bucket_in_order(client, auth, day, hits):
    response = aggregate(
        client, auth, hits, day, day + timedelta(hours=5), operation="sum", window="1h"
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body == {
        "success": True,
        "metric": "api.hits",
        "type": "counter",
        "operation": "sum",
        "window": "1h",
        "start": isoformat_z(day),
        "end": isoformat_z(day + timedelta(hours=5)),
        "resolution": "raw",
        "data": [
            {"timestamp": isoformat_z(day + timedelta(hours=h)), "value": v}
            for h, v in enumerate([5, 10, 0, 1.5, 0])
        ],
    }


def test_whole_results_are_json_integers(client, auth, day, hits, latency):
    """A sum of counters reads 5, as SPEC's example does, not 5.0; fractions stay fractions."""
    end = day + timedelta(hours=5)
    sums = aggregate(client, auth, hits, day, end, operation="sum", window="1h")
    assert [type(point["value"]) for point in sums.get_json()["data"]] == [
        int,
        int,
        int,
        float,
        int,
    ]
    assert b'"value":5}' in sums.data.replace(b" ", b"")
    for operation, expected in (("avg", 75), ("min", 50), ("max", 100)):
        body = aggregate(client, auth, latency, day, end, operation=operation, window="1d")
        [point] = body.get_json()["data"]
        assert point["value"] == expected and type(point["value"]) is int


def test_empty_buckets_are_null_for_avg_min_max(client, auth, day, hits):
    for operation in ("avg", "min", "max"):
        response = get(
            client,
            auth,
            f"/api/metrics/{hits}",
            aggregation=operation,
            interval="hour",
            **{"from": isoformat_z(day), "to": isoformat_z(day + timedelta(hours=3))},
        )
        values = [p["value"] for p in response.get_json()["data"]]
        assert values[2] is None
        assert values[0] == {"avg": 2.5, "min": 2, "max": 3}[operation]


def test_count_counts_points(client, auth, day, hits):
    response = aggregate(
        client, auth, hits, day, day + timedelta(days=1), operation="count", window="1d"
    )
    assert response.get_json()["data"] == [{"timestamp": isoformat_z(day), "value": 4}]


def test_fill_none_omits_empty_buckets(client, auth, day, hits):
    response = aggregate(
        client, auth, hits, day, day + timedelta(hours=5), window="1h", fill="none"
    )
    stamps = [p["timestamp"] for p in response.get_json()["data"]]
    assert stamps == [isoformat_z(day + timedelta(hours=h)) for h in (0, 1, 3)]


def test_default_operation_follows_the_type(client, auth, day, hits, latency):
    span = {"start": isoformat_z(day), "end": isoformat_z(day + timedelta(hours=1))}
    counter = get(client, auth, "/api/metrics/aggregate", name=hits, **span).get_json()
    value = get(client, auth, "/api/metrics/aggregate", name=latency, **span).get_json()
    assert (counter["operation"], counter["data"][0]["value"]) == ("sum", 5)
    assert (value["operation"], value["data"][0]["value"]) == ("avg", 75)


def test_range_is_half_open_and_first_bucket_holds_only_points_from_start(client, auth, day, hits):
    start = day + timedelta(minutes=30)  # inside hour 0: the 00:05 point is before it
    end = day + timedelta(hours=1)  # the 01:00 point is at end: excluded
    response = aggregate(client, auth, hits, start, end, window="1h")
    assert response.get_json()["data"] == [{"timestamp": isoformat_z(day), "value": 3}]


def test_point_a_microsecond_before_an_edge_is_in_the_earlier_bucket(client, auth, day):
    edge = day + timedelta(days=1)
    write(client, auth, "counter", "edge", [(edge - timedelta(microseconds=1), 1), (edge, 2)])
    response = aggregate(client, auth, "edge", day, edge + timedelta(days=1), window="1d")
    assert [p["value"] for p in response.get_json()["data"]] == [1, 2]


def test_buckets_align_to_epoch_multiples(client, auth, day, hits):
    start = day + timedelta(minutes=7)
    response = aggregate(client, auth, hits, start, start + timedelta(minutes=30), window="15m")
    stamps = [p["timestamp"] for p in response.get_json()["data"]]
    assert stamps == [isoformat_z(day + timedelta(minutes=m)) for m in (0, 15, 30)]


def test_windows_and_their_names(client, auth, day, hits):
    span = {"start": isoformat_z(day), "end": isoformat_z(day + timedelta(days=1))}
    sizes = {"1m": 1440, "5m": 288, "15m": 96, "1h": 24, "1d": 1}
    for window, count in sizes.items():
        body = get(
            client, auth, "/api/metrics/aggregate", name=hits, window=window, **span
        ).get_json()
        assert len(body["data"]) == count and body["window"] == window
    for alias, window in {"minute": "1m", "hour": "1h", "day": "1d"}.items():
        body = get(client, auth, f"/api/metrics/{hits}", interval=alias, **span).get_json()
        assert body["window"] == window


def test_default_range_is_the_last_24_hours(client, auth, hits):
    body = get(client, auth, "/api/metrics/aggregate", name=hits, window="1h").get_json()
    end = datetime.fromisoformat(body["end"].rstrip("Z"))
    start = datetime.fromisoformat(body["start"].rstrip("Z"))
    assert end - start == timedelta(hours=24)
    assert abs(end - datetime.now(UTC).replace(tzinfo=None)) < timedelta(minutes=1)
    assert len(body["data"]) in (24, 25)


def test_the_two_url_forms_give_identical_data(client, auth, day, hits):
    span = (isoformat_z(day), isoformat_z(day + timedelta(hours=6)))
    long_form = get(
        client,
        auth,
        "/api/metrics/aggregate",
        name=hits,
        operation="max",
        window="1h",
        start=span[0],
        end=span[1],
    ).get_json()
    short_form = get(
        client,
        auth,
        f"/api/metrics/{hits}",
        aggregation="max",
        interval="hour",
        **{"from": span[0], "to": span[1]},
    ).get_json()
    assert long_form == short_form


def test_several_names_are_keyed_by_name(client, auth, day, hits, latency):
    response = get(
        client,
        auth,
        "/api/metrics/aggregate",
        name=f"{hits},{latency}",
        operation="count",
        window="1h",
        start=isoformat_z(day),
        end=isoformat_z(day + timedelta(hours=2)),
    )
    body = response.get_json()
    assert (body["metric"], body["metrics"]) == ("api.hits,api.latency", [hits, latency])
    assert body["operation"] == "count"
    assert body["type"] == {"api.hits": "counter", "api.latency": "value"}
    assert [p["value"] for p in body["data"]["api.hits"]] == [2, 1]
    assert [p["value"] for p in body["data"]["api.latency"]] == [2, 0]


def test_unknown_name_is_404_naming_it(client, auth, hits):
    for path, params in (
        ("/api/metrics/aggregate", {"name": f"{hits},no.such"}),
        ("/api/metrics/no.such", {}),
    ):
        response = get(client, auth, path, **params)
        assert response.status_code == 404
        error = response.get_json()["error"]
        assert error["code"] == "METRIC_NOT_FOUND" and "no.such" in error["message"]


def test_names_are_case_sensitive_in_queries(client, auth, hits):
    assert get(client, auth, "/api/metrics/API.HITS").status_code == 404


@pytest.mark.parametrize(
    "params, field",
    [
        ({"operation": "median"}, "operation"),
        ({"window": "2h"}, "window"),
        ({"start": "last tuesday"}, "start"),
        ({"end": "2026-02-30T00:00:00Z"}, "end"),
        ({"fill": "previous"}, "fill"),
        ({"name": "bad name"}, "name"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_parameters_are_400_naming_the_field(client, auth, hits, params, field):
    response = get(client, auth, "/api/metrics/aggregate", **{"name": hits, **params})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "VALIDATION_ERROR" and field in error["details"]


def test_missing_name_is_400(client, auth):
    response = get(client, auth, "/api/metrics/aggregate")
    assert response.get_json()["error"]["details"].keys() == {"name"}


@pytest.mark.parametrize("offset", [timedelta(0), timedelta(hours=-1)])
def test_start_must_be_before_end(client, auth, day, hits, offset):
    response = aggregate(client, auth, hits, day, day + offset)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "VALIDATION_ERROR"


def test_too_many_buckets_is_query_too_large(client, auth, day, hits):
    response = aggregate(client, auth, hits, day - timedelta(days=7), day, window="1m")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "QUERY_TOO_LARGE"


def test_bucket_cap_follows_configuration(make_app):
    app = make_app(METRICS_MAX_BUCKETS=5)
    headers = {"X-API-Key": new_key(app)}
    client = app.test_client()
    client.post("/api/metrics/counter", json={"name": "capped"}, headers=headers)
    six_hours = get(
        client,
        headers,
        "/api/metrics/capped",
        interval="hour",
        **{"from": isoformat_z(today_at(0)), "to": isoformat_z(today_at(6))},
    )
    assert six_hours.get_json()["error"]["code"] == "QUERY_TOO_LARGE"
    five_hours = get(
        client,
        headers,
        "/api/metrics/capped",
        interval="hour",
        **{"from": isoformat_z(today_at(0)), "to": isoformat_z(today_at(5))},
    )
    assert five_hours.status_code == 200


def test_epoch_seconds_work_as_range_ends(client, auth, day, hits):
    start = int((day - EPOCH).total_seconds())
    response = get(client, auth, "/api/metrics/aggregate", name=hits, start=start, end=start + 3600)
    assert response.get_json()["data"] == [{"timestamp": isoformat_z(day), "value": 5}]


def test_queries_need_a_key(client, hits):
    assert client.get("/api/metrics/aggregate", query_string={"name": hits}).status_code == 401


# -- listing ---------------------------------------------------------------------------------


def test_queries_use_the_read_database_when_set(make_app, tmp_path):
    replica_url = f"sqlite:///{tmp_path / 'replica.sqlite3'}"
    make_app(DATABASE_URL=replica_url)  # an empty, migrated replica
    app = make_app(DATABASE_READ_URL=replica_url)
    headers = {"X-API-Key": new_key(app)}
    client = app.test_client()
    assert (
        client.post("/api/metrics/counter", json={"name": "r"}, headers=headers).status_code == 201
    )
    assert get(client, headers, "/api/metrics/r").status_code == 404  # not on the replica
    assert get(client, headers, "/api/metrics").get_json()["data"] == []
    assert client.get("/ready").get_json()["checks"]["database_read"] == "ok"


def test_several_names_sharing_type_and_operation_report_them_once(client, auth, day, hits):
    write(client, auth, "counter", "api.other", [(day, 1)])
    response = aggregate(client, auth, f"{hits},api.other", day, day + timedelta(hours=1))
    body = response.get_json()
    assert (body["type"], body["operation"]) == ("counter", "sum")
    assert body["data"] == {
        "api.hits": [{"timestamp": isoformat_z(day), "value": 5}],
        "api.other": [{"timestamp": isoformat_z(day), "value": 1}],
    }


def test_mixed_types_without_operation_use_each_default(client, auth, day, hits, latency):
    response = aggregate(client, auth, f"{hits},{latency}", day, day + timedelta(hours=1))
    body = response.get_json()
    assert body["operation"] == {"api.hits": "sum", "api.latency": "avg"}
    assert body["data"]["api.latency"][0]["value"] == 75


@pytest.mark.parametrize(
    "values, expected",
    [
        ([1e-12, -1e-12, 3.3e-31], 3.3e-31),
        ([0.1, 0.2, -0.3], 0.0),
        ([1e16, 1, -1e16], 1.0),
        ([1.2345678901234567e-20, 1e-40], 1.2345678901234567e-20 + 1e-40),
    ],
)
def test_sums_are_exact_even_when_they_cancel(client, auth, day, values, expected):
    write(
        client,
        auth,
        "value",
        "exact",
        [(day + timedelta(seconds=i), v) for i, v in enumerate(values)],
    )
    end = day + timedelta(hours=1)
    total = aggregate(client, auth, "exact", day, end, operation="sum").get_json()["data"][0]
    mean = aggregate(client, auth, "exact", day, end, operation="avg").get_json()["data"][0]
    assert total["value"] == expected
    assert mean["value"] == pytest.approx(expected / len(values), rel=1e-15, abs=0)


def test_a_range_that_cannot_default_its_start_is_400(client, auth, hits):
    for end in ("0001-01-01T00:00:00", "-62135596800"):
        response = get(client, auth, "/api/metrics/aggregate", name=hits, end=end)
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "VALIDATION_ERROR"


def test_query_parameters_are_forgiving_where_meaning_is_clear(client, auth, day, hits, latency):
    span = {"start": isoformat_z(day), "end": isoformat_z(day + timedelta(hours=1))}
    upper = get(
        client, auth, "/api/metrics/aggregate", name=hits, operation="SUM", window="1H", **span
    )
    assert (upper.get_json()["operation"], upper.get_json()["window"]) == ("sum", "1h")
    alias = get(client, auth, "/api/metrics/aggregate", metric=hits, **span)
    assert alias.get_json()["metric"] == hits
    repeated = client.get(
        "/api/metrics/aggregate",
        query_string=[
            ("name", hits),
            ("name", latency),
            ("start", span["start"]),
            ("end", span["end"]),
        ],
        headers=auth,
    )
    assert set(repeated.get_json()["data"]) == {hits, latency}
    empty = get(client, auth, "/api/metrics/aggregate", name=hits, start="", window="", fill="")
    assert empty.status_code == 200 and empty.get_json()["window"] == "1h"


def test_an_unencoded_plus_in_an_offset_is_understood(client, auth, day, hits):
    start = (day + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S") + " 01:00"  # "+" → " "
    response = get(
        client,
        auth,
        "/api/metrics/aggregate",
        name=hits,
        start=start,
        window="1h",
        end=isoformat_z(day + timedelta(hours=1)),
    )
    assert response.get_json()["data"] == [{"timestamp": isoformat_z(day), "value": 5}]


def test_details_name_the_parameter_as_sent(client, auth, hits):
    response = get(client, auth, f"/api/metrics/{hits}", **{"from": "bad", "interval": "2h"})
    assert set(response.get_json()["error"]["details"]) == {"from", "interval"}
