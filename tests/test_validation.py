"""Validation edge cases: every bad input is a 400 with a stable code and nothing written."""

import json

import pytest
from sqlalchemy import text

from app.db import get_store
from tests.helpers import stored_metric, stored_points


def post_raw(client, path, raw, headers):
    return client.post(path, data=raw, headers={**headers, "Content-Type": "application/json"})


def assert_refused(response, code, field=None):
    assert response.status_code == 400, response.get_json()
    body = response.get_json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    if field:
        assert field in body["error"]["details"]


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_tokens_are_invalid_json(client, app, auth, token):
    raw = f'{{"name": "nf", "value": {token}}}'
    assert_refused(post_raw(client, "/api/metrics/value", raw, auth), "INVALID_JSON")
    assert stored_metric(app, "nf") is None


@pytest.mark.parametrize("raw", ['{"name": ', "{'name': 'x'}", '{"name": "x",}', "\x00"])
def test_malformed_json_is_invalid_json(client, auth, raw):
    assert_refused(post_raw(client, "/api/metrics/counter", raw, auth), "INVALID_JSON")


def test_json_that_is_not_an_object_is_refused(client, auth):
    response = post_raw(client, "/api/metrics/counter", '["name", "x"]', auth)
    assert_refused(response, "VALIDATION_ERROR", "body")


@pytest.mark.parametrize(
    "value", ['"5"', "true", "false", "null", "[1]", '{"v": 1}', "1e17", "-1e17", "1e400"]
)
def test_value_must_be_a_finite_json_number_within_1e16(client, app, auth, value):
    raw = f'{{"name": "bad.value", "value": {value}}}'
    assert_refused(post_raw(client, "/api/metrics/value", raw, auth), "VALIDATION_ERROR", "value")
    assert stored_metric(app, "bad.value") is None


@pytest.mark.parametrize("value", ["1e16", "-1e16", "10000000000000000", "0", "-0.0", "1.5e-300"])
def test_values_up_to_1e16_are_accepted(client, auth, value):
    raw = f'{{"name": "edge.value", "value": {value}}}'
    assert post_raw(client, "/api/metrics/value", raw, auth).status_code == 201


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a" * 256,
        "has space",
        "slash/name",
        "a';DROP TABLE metrics;--",
        'quote"name',
        "percent%",
        "mét.rique",
        "日本",
        "emoji.😀",
        "trailing.newline\n",
        123,
        None,
        True,
        ["a"],
    ],
)
def test_bad_names_are_refused(client, app, auth, name):
    body = json.dumps({"name": name, "value": 1})
    assert_refused(post_raw(client, "/api/metrics/value", body, auth), "VALIDATION_ERROR", "name")
    with get_store(app).write.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM metrics")).scalar() == 0


def test_missing_name_is_refused(client, auth):
    response = post_raw(client, "/api/metrics/counter", "{}", auth)
    assert_refused(response, "VALIDATION_ERROR", "name")


def test_empty_body_is_refused(client, auth):
    assert_refused(post_raw(client, "/api/metrics/counter", "", auth), "VALIDATION_ERROR", "name")


def test_longest_name_is_accepted(client, app, auth):
    name = "N" * 255
    assert (
        post_raw(client, "/api/metrics/counter", json.dumps({"name": name}), auth).status_code
        == 201
    )
    assert stored_metric(app, name) == (name, "counter")


@pytest.mark.parametrize("when", ["yesterday", "", "2026-13-01T00:00:00Z", True, [], {"t": 1}])
def test_unparseable_times_are_validation_errors(client, auth, when):
    body = json.dumps({"name": "t", "value": 1, "recorded_at": when})
    assert_refused(
        post_raw(client, "/api/metrics/value", body, auth), "VALIDATION_ERROR", "recorded_at"
    )


@pytest.mark.parametrize(
    "when", [0, -1, 1e20, -1e20, "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+01:00", "1999-01-01"]
)
def test_times_outside_the_window_are_out_of_range(client, app, auth, when):
    body = json.dumps({"name": "t", "value": 1, "recorded_at": when})
    assert_refused(post_raw(client, "/api/metrics/value", body, auth), "TIMESTAMP_OUT_OF_RANGE")
    assert stored_metric(app, "t") is None


def test_unknown_fields_are_ignored(client, app, auth):
    body = json.dumps({"name": "extra", "value": 1, "labels": {"a": 1}})
    assert post_raw(client, "/api/metrics/counter", body, auth).status_code == 201
    assert [v for _, v in stored_points(app, "extra")] == [1.0]


@pytest.mark.parametrize("value", ["٣", "１２", "1" * 4400])
def test_form_values_must_be_ascii_decimals_in_range(client, app, auth, value):
    response = client.post(
        "/api/metrics/value",
        data=f"name=digits&value={value}",
        headers={**auth, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_refused(response, "VALIDATION_ERROR", "value")
    assert stored_metric(app, "digits") is None


def test_a_json_integer_past_pythons_digit_limit_is_out_of_range(client, auth):
    raw = '{"name": "huge", "value": ' + "1" * 4400 + "}"
    assert_refused(post_raw(client, "/api/metrics/value", raw, auth), "VALIDATION_ERROR", "value")


@pytest.mark.parametrize("when", ["١٧٩٥٤١٧٧٩١", "２０２６-11-23T00:00:00Z"])
def test_times_must_be_ascii(client, auth, when):
    body = json.dumps({"name": "t", "value": 1, "recorded_at": when})
    assert_refused(
        post_raw(client, "/api/metrics/value", body, auth), "VALIDATION_ERROR", "recorded_at"
    )


def test_json_is_read_even_under_a_multipart_content_type(client, app, auth):
    response = client.post(
        "/api/metrics/counter",
        data='{"name": "mp.json"}',
        headers={**auth, "Content-Type": "multipart/form-data; boundary=x"},
    )
    assert response.status_code == 201
    assert stored_metric(app, "mp.json") == ("mp.json", "counter")


def test_a_null_batch_item_is_rejected_alone(client, app, auth):
    body = '{"metrics": [{"name": "nb.x", "type": "counter"}, null]}'
    payload = post_raw(client, "/api/metrics/batch", body, auth).get_json()
    assert (payload["accepted"], payload["rejected"]) == (1, 1)
    assert payload["errors"][0]["index"] == 1
    assert stored_metric(app, "nb.x") == ("nb.x", "counter")
