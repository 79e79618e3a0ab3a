"""POST /api/metrics/counter, /value and /batch on both storage backends."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.helpers import stored_metric, stored_points

pytestmark = pytest.mark.points


def post(client, path, body, headers, content_type="application/json"):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(path, data=data, headers={**headers, "Content-Type": content_type})


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def recent(seconds_ago=60):
    return datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=seconds_ago)


def test_counter_without_value_counts_one(client, app, auth):
    response = post(client, "/api/metrics/counter", {"name": "page.views"}, auth)
    assert response.status_code == 201
    assert response.get_json() == {"success": True, "message": "Counter metric recorded"}
    assert [value for _, value in stored_points(app, "page.views")] == [1.0]
    assert stored_metric(app, "page.views") == ("page.views", "counter")


def test_counter_with_value_adds_it(client, app, auth):
    assert post(client, "/api/metrics/counter", {"name": "c", "value": 5}, auth).status_code == 201
    assert (
        post(client, "/api/metrics/counter", {"name": "c", "value": -2.5}, auth).status_code == 201
    )
    assert sorted(v for _, v in stored_points(app, "c")) == [-2.5, 5.0]


def test_value_is_recorded(client, app, auth):
    response = post(
        client, "/api/metrics/value", {"name": "response.time.ms", "value": 145.67}, auth
    )
    assert response.status_code == 201
    assert response.get_json() == {"success": True, "message": "Value metric recorded"}
    assert [v for _, v in stored_points(app, "response.time.ms")] == [145.67]


def test_value_requires_a_value(client, app, auth):
    response = post(client, "/api/metrics/value", {"name": "lat"}, auth)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert "value" in error["details"]
    assert stored_metric(app, "lat") is None


def test_metric_field_is_an_alias_of_name(client, app, auth):
    assert post(client, "/api/metrics/counter", {"metric": "alias.me"}, auth).status_code == 201
    assert stored_metric(app, "alias.me") == ("alias.me", "counter")


def test_json_body_is_read_whatever_the_content_type(client, app, auth):
    body = '{"name": "curl.default", "value": 2}'
    response = post(client, "/api/metrics/counter", body, auth, "application/x-www-form-urlencoded")
    assert response.status_code == 201
    assert [v for _, v in stored_points(app, "curl.default")] == [2.0]


def test_form_fields_are_accepted(client, app, auth):
    response = post(
        client,
        "/api/metrics/value",
        "name=form.metric&value=-1.5e2",
        auth,
        "application/x-www-form-urlencoded",
    )
    assert response.status_code == 201
    assert [v for _, v in stored_points(app, "form.metric")] == [-150.0]


def test_multipart_form_fields_are_accepted(client, app, auth):
    response = client.post(
        "/api/metrics/counter",
        data={"metric": "multi.part", "value": "3"},
        headers=auth,
        content_type="multipart/form-data",
    )
    assert response.status_code == 201
    assert [v for _, v in stored_points(app, "multi.part")] == [3.0]


def test_form_value_must_be_a_decimal(client, app, auth):
    for bad in ("abc", "nan", "inf", "0x10", "1_000", ""):
        response = post(
            client,
            "/api/metrics/value",
            f"name=f&value={bad}",
            auth,
            "application/x-www-form-urlencoded",
        )
        assert response.status_code == 400, bad
        assert response.get_json()["error"]["details"].keys() == {"value"}
    assert stored_metric(app, "f") is None


def test_names_are_case_sensitive(client, app, auth):
    assert post(client, "/api/metrics/counter", {"name": "Api.Hits"}, auth).status_code == 201
    assert (
        post(client, "/api/metrics/value", {"name": "api.hits", "value": 3}, auth).status_code
        == 201
    )
    assert stored_metric(app, "Api.Hits") == ("Api.Hits", "counter")
    assert stored_metric(app, "api.hits") == ("api.hits", "value")
    assert len(stored_points(app, "Api.Hits")) == 1


def test_type_never_changes(client, app, auth):
    assert post(client, "/api/metrics/counter", {"name": "typed"}, auth).status_code == 201
    response = post(client, "/api/metrics/value", {"name": "typed", "value": 1}, auth)
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "METRIC_TYPE_MISMATCH"
    assert len(stored_points(app, "typed")) == 1


def test_type_mismatch_is_seen_by_a_second_server(make_app, database_url):
    first, second = make_app(), make_app()
    from tests.helpers import new_key

    headers = {"X-API-Key": new_key(first)}
    assert (
        post(
            first.test_client(), "/api/metrics/value", {"name": "v", "value": 1}, headers
        ).status_code
        == 201
    )
    response = post(second.test_client(), "/api/metrics/counter", {"name": "v"}, headers)
    assert response.status_code == 409


def test_recorded_at_keeps_microseconds(client, app, auth):
    moment = recent().replace(microsecond=123456)
    body = {"name": "precise", "value": 1, "recorded_at": iso(moment)}
    assert post(client, "/api/metrics/value", body, auth).status_code == 201
    assert stored_points(app, "precise") == [(moment, 1.0)]


@pytest.mark.parametrize("shape", ["naive", "offset", "epoch_int", "epoch_float", "epoch_text"])
def test_recorded_at_forms_mean_the_same_instant(client, app, auth, shape):
    moment = recent().replace(microsecond=250000)
    epoch = (moment - datetime(1970, 1, 1)).total_seconds()
    raw = {
        "naive": moment.strftime("%Y-%m-%dT%H:%M:%S.%f"),
        "offset": (moment + timedelta(hours=5, minutes=30)).strftime("%Y-%m-%dT%H:%M:%S.%f+05:30"),
        "epoch_int": int(epoch),
        "epoch_float": epoch,
        "epoch_text": str(epoch),
    }[shape]
    expected = moment.replace(microsecond=0) if shape == "epoch_int" else moment
    body = {"name": "when", "value": 1, "recorded_at": raw}
    assert post(client, "/api/metrics/value", body, auth).status_code == 201
    assert stored_points(app, "when") == [(expected, 1.0)]


def test_points_older_than_max_past_days_are_refused(client, app, auth):
    too_old = recent(7 * 86400 + 60)
    body = {"name": "old", "value": 1, "recorded_at": iso(too_old)}
    response = post(client, "/api/metrics/value", body, auth)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "TIMESTAMP_OUT_OF_RANGE"
    assert stored_metric(app, "old") is None


def test_points_just_inside_max_past_days_are_kept(client, app, auth):
    moment = recent(7 * 86400 - 60)
    body = {"name": "oldish", "value": 1, "recorded_at": iso(moment)}
    assert post(client, "/api/metrics/value", body, auth).status_code == 201
    assert stored_points(app, "oldish") == [(moment, 1.0)]


def test_points_too_far_ahead_are_refused(client, app, auth):
    ahead = recent(-120)
    response = post(
        client, "/api/metrics/value", {"name": "f", "value": 1, "recorded_at": iso(ahead)}, auth
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "TIMESTAMP_OUT_OF_RANGE"
    slightly_ahead = recent(-30)
    body = {"name": "f", "value": 1, "recorded_at": iso(slightly_ahead)}
    assert post(client, "/api/metrics/value", body, auth).status_code == 201


def test_time_window_follows_configuration(make_app):
    app = make_app(METRICS_MAX_PAST_DAYS=1, METRICS_MAX_FUTURE_SECONDS=0)
    from tests.helpers import new_key

    headers = {"X-API-Key": new_key(app)}
    client = app.test_client()
    two_days = {"name": "w", "value": 1, "recorded_at": iso(recent(2 * 86400))}
    assert post(client, "/api/metrics/value", two_days, headers).status_code == 400
    ahead = {"name": "w", "value": 1, "recorded_at": iso(recent(-10))}
    assert post(client, "/api/metrics/value", ahead, headers).status_code == 400


# -- batch -----------------------------------------------------------------------------------


def test_batch_writes_every_valid_item(client, app, auth):
    body = {
        "metrics": [
            {"name": "b.count", "type": "counter"},
            {"name": "b.count", "type": "counter", "value": 4},
            {"metric": "b.lat", "type": "value", "value": 12.5, "recorded_at": iso(recent())},
        ]
    }
    response = post(client, "/api/metrics/batch", body, auth)
    assert response.status_code == 201
    assert response.get_json() == {"success": True, "accepted": 3, "rejected": 0, "errors": []}
    assert sorted(v for _, v in stored_points(app, "b.count")) == [1.0, 4.0]
    assert [v for _, v in stored_points(app, "b.lat")] == [12.5]


def test_batch_reports_each_rejected_item_by_index(client, app, auth):
    post(client, "/api/metrics/counter", {"name": "already.counter"}, auth)
    body = {
        "metrics": [
            {"name": "ok", "type": "value", "value": 1},
            {"name": "bad name!", "type": "value", "value": 1},
            {"name": "ok", "type": "value"},
            {"name": "already.counter", "type": "value", "value": 2},
            {"name": "old", "type": "value", "value": 1, "recorded_at": iso(recent(30 * 86400))},
            "not an object",
            {"name": "ok", "type": "gauge", "value": 1},
        ]
    }
    response = post(client, "/api/metrics/batch", body, auth)
    assert response.status_code == 201
    payload = response.get_json()
    assert (payload["accepted"], payload["rejected"]) == (1, 6)
    codes = [(e["index"], e["code"]) for e in payload["errors"]]
    assert codes == [
        (1, "VALIDATION_ERROR"),
        (2, "VALIDATION_ERROR"),
        (3, "METRIC_TYPE_MISMATCH"),
        (4, "TIMESTAMP_OUT_OF_RANGE"),
        (5, "VALIDATION_ERROR"),
        (6, "VALIDATION_ERROR"),
    ]
    assert all(e["message"] for e in payload["errors"])
    assert [v for _, v in stored_points(app, "ok")] == [1.0]
    assert len(stored_points(app, "already.counter")) == 1
    assert stored_metric(app, "old") is None


def test_batch_items_disagreeing_on_a_new_metric_type_keep_the_first(client, app, auth):
    body = {
        "metrics": [
            {"name": "fresh", "type": "value", "value": 1},
            {"name": "fresh", "type": "counter"},
        ]
    }
    response = post(client, "/api/metrics/batch", body, auth)
    assert response.status_code == 201
    assert response.get_json()["errors"] == [
        {
            "index": 1,
            "code": "METRIC_TYPE_MISMATCH",
            "message": "Metric 'fresh' is a value metric; it cannot take a counter",
        }
    ]
    assert stored_metric(app, "fresh") == ("fresh", "value")


def test_batch_with_nothing_valid_is_a_400_with_the_summary(client, app, auth):
    body = {"metrics": [{"name": "", "type": "value", "value": 1}, {"type": "counter"}]}
    response = post(client, "/api/metrics/batch", body, auth)
    assert response.status_code == 400
    payload = response.get_json()
    assert payload["success"] is False
    assert payload["error"]["code"] == "VALIDATION_ERROR"
    assert (payload["accepted"], payload["rejected"]) == (0, 2)
    assert [e["index"] for e in payload["errors"]] == [0, 1]


def test_empty_batch_is_a_400(client, auth):
    response = post(client, "/api/metrics/batch", {"metrics": []}, auth)
    assert response.status_code == 400
    assert response.get_json()["accepted"] == 0


def test_batch_of_exactly_the_limit_is_accepted(client, app, auth):
    body = {"metrics": [{"name": "limit.ok", "type": "counter", "value": i} for i in range(1000)]}
    response = post(client, "/api/metrics/batch", body, auth)
    assert response.status_code == 201
    assert response.get_json()["accepted"] == 1000
    assert len(stored_points(app, "limit.ok")) == 1000


def test_batch_one_over_the_limit_is_refused_whole(client, app, auth):
    body = {"metrics": [{"name": "limit.over", "type": "counter"} for _ in range(1001)]}
    response = post(client, "/api/metrics/batch", body, auth)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "BATCH_TOO_LARGE"
    assert stored_metric(app, "limit.over") is None


def test_batch_limit_follows_configuration(make_app):
    from tests.helpers import new_key

    app = make_app(METRICS_MAX_BATCH=2)
    headers = {"X-API-Key": new_key(app)}
    body = {"metrics": [{"name": "x", "type": "counter"}] * 3}
    response = post(app.test_client(), "/api/metrics/batch", body, headers)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "BATCH_TOO_LARGE"
    assert stored_metric(app, "x") is None
    body = {"metrics": [{"name": "x", "type": "counter"}] * 2}
    assert post(app.test_client(), "/api/metrics/batch", body, headers).status_code == 201


@pytest.mark.parametrize("body", ['{"metrics": {}}', '{"metrics": "x"}', "{}", '{"metrics": null}'])
def test_batch_needs_a_list(client, auth, body):
    response = post(client, "/api/metrics/batch", body, auth)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert "metrics" in error["details"]


def test_batch_item_value_null_is_refused(client, app, auth):
    body = {
        "metrics": [
            {"name": "n.c", "type": "counter", "value": None},
            {"name": "ok", "type": "counter"},
        ]
    }
    payload = post(client, "/api/metrics/batch", body, auth).get_json()
    assert (payload["accepted"], payload["rejected"]) == (1, 1)
    assert payload["errors"][0]["code"] == "VALIDATION_ERROR"
    assert "value" in payload["errors"][0]["details"]
    assert stored_metric(app, "n.c") is None


def test_counter_value_null_is_refused(client, auth):
    response = post(client, "/api/metrics/counter", {"name": "n.c", "value": None}, auth)
    assert response.status_code == 400 and "value" in response.get_json()["error"]["details"]


def test_blank_form_value_means_no_value(client, app, auth):
    form = "application/x-www-form-urlencoded"
    assert post(client, "/api/metrics/counter", "name=blank&value=", auth, form).status_code == 201
    assert [v for _, v in stored_points(app, "blank")] == [1.0]
    response = post(client, "/api/metrics/value", "name=blank.v&value=", auth, form)
    assert response.status_code == 400


def test_lower_case_z_is_utc(client, app, auth):
    moment = recent().replace(microsecond=0)
    body = {"name": "lower.z", "value": 1, "recorded_at": moment.strftime("%Y-%m-%dT%H:%M:%Sz")}
    assert post(client, "/api/metrics/value", body, auth).status_code == 201
    assert stored_points(app, "lower.z") == [(moment, 1.0)]
