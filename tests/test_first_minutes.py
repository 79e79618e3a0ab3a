"""What a new user meets first: milliseconds taken on every ingest route, messages that say
what was sent and what to send, misspelt parameters named, the limits readable, and a Makefile
that helps before it installs anything."""

import subprocess
import time

import pytest

from app.core.timeutil import isoformat_z, utcnow
from tests.harness import ROOT
from tests.helpers import new_key, stored_points


def millis_ago(seconds):
    return int((time.time() - seconds) * 1000)


def test_recorded_at_in_milliseconds_is_read_by_magnitude_on_every_route(app, client, auth):
    moment = millis_ago(30)
    routes = [
        ("/api/metrics/counter", {"name": "ms.counter", "recorded_at": moment}),
        ("/api/metrics/value", {"name": "ms.value", "value": 1, "recorded_at": moment}),
        (
            "/api/metrics/batch",
            {"metrics": [{"name": "ms.batch", "type": "counter", "recorded_at": str(moment)}]},
        ),  # fmt: skip
    ]
    for path, body in routes:
        assert client.post(path, json=body, headers=auth).status_code == 201, path
    ez = client.get("/ez", query_string={"ezkey": auth["X-API-Key"], "stat": "ms.ez", "t": moment})
    assert ez.status_code == 200
    for name in ("ms.counter", "ms.value", "ms.batch", "ms.ez"):
        ((recorded, _),) = stored_points(app, name)
        assert abs((recorded - utcnow()).total_seconds() + 30) < 5, name


@pytest.mark.parametrize(
    "value, says",
    [
        ("12.5", 'not a string ("12.5"); in a JSON body write it without quotes'),
        (True, "not a boolean (true)"),
        (None, "not null"),
    ],
)
def test_a_wrong_type_of_value_is_named(client, auth, value, says):
    response = client.post("/api/metrics/value", json={"name": "m", "value": value}, headers=auth)
    message = response.get_json()["error"]["message"]
    assert response.status_code == 400 and says in message and "Missing data" not in message


def test_an_authorization_header_without_its_scheme_gets_a_hint(client, api_key):
    response = client.get("/api/metrics", headers={"Authorization": api_key})
    message = response.get_json()["error"]["message"]
    assert response.status_code == 401 and "Bearer" in message and "X-API-Key" in message


def test_a_misspelt_query_parameter_is_named_with_the_intended_one(client, auth):
    client.post("/api/metrics/counter", json={"name": "m"}, headers=auth)
    response = client.get("/api/metrics/aggregate?name=m&opertion=max", headers=auth)
    assert response.status_code == 400
    assert response.get_json()["error"]["details"] == {
        "opertion": ["Unknown parameter; did you mean 'operation'?"]
    }
    listing = client.get("/api/metrics?limt=5", headers=auth)
    assert listing.get_json()["error"]["details"]["limt"] == [
        "Unknown parameter; did you mean 'limit'?"
    ]
    busted = client.get("/api/metrics/m?interval=hour&_=1733356800123", headers=auth)
    assert busted.status_code == 200  # parameters starting with _ are cache busters


def test_the_limits_that_apply_to_the_caller(make_app):
    app = make_app(METRICS_MAX_BATCH=50, METRICS_MAX_METRICS=10)
    client = app.test_client()
    read_only = {"X-API-Key": new_key(app, rate_limit=77, scopes="read")}
    client.post("/api/metrics/counter", json={"name": "one"}, headers={"X-API-Key": new_key(app)})
    body = client.get("/api/limits", headers=read_only).get_json()
    assert body["success"] is True
    assert (body["max_batch"], body["max_metrics"], body["metrics_left"]) == (50, 10, 9)
    assert (body["max_buckets"], body["max_query_points"], body["rate_limit"]) == (
        10000,
        200000,
        77,
    )
    assert client.get("/api/limits").status_code == 401


def make(*args, cwd):
    done = subprocess.run(["make", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr


def test_the_makefile_helps_before_it_installs(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    code, text = make("help", cwd=clone)
    assert code == 0 and "$" not in text and "api-key" in text
    code, text = make("api-key", cwd=clone)
    assert code == 2 and 'usage: make api-key NAME="My App"' in text
    assert not (clone / ".venv").exists()  # nothing was installed to say that


def test_ingest_in_the_future_by_milliseconds_is_out_of_range(client, auth):
    ahead = millis_ago(-3600)
    response = client.post("/api/metrics/counter", json={"name": "m", "recorded_at": ahead},
                           headers=auth)  # fmt: skip
    assert response.get_json()["error"]["code"] == "TIMESTAMP_OUT_OF_RANGE"
    assert isoformat_z(utcnow())  # the window is judged from the server's clock
