"""StatHat compatibility: the name rule, /ez, /c and /v as real clients use them — the official
Node client and the Flask-StatHat package against a live gunicorn — and their errors."""

import json
import shutil
import subprocess
import urllib.parse
from datetime import timedelta

import pytest
from flask import Flask

from app.api.auth import create_key
from app.core.stathat import BadStatName, metric_name, metric_names
from app.core.timeutil import isoformat_z, utcnow
from app.db import get_store
from tests.clients import call
from tests.helpers import ISSUED_KEYS, new_key, stored_points

pytestmark = pytest.mark.points

NODE_CLIENT = "stathat@0.0.8"


@pytest.mark.parametrize(
    "stat, name",
    [
        ("page views", "page_views"),
        ("  page views  ", "page_views"),
        ("page  views", "page_views"),
        ("API: hits/sec", "API_hits_sec"),
        ("caf\u00e9", "caf_"),
        ("already.fine-name_1", "already.fine-name_1"),
    ],
)
def test_stathat_names_map_by_one_rule(stat, name):
    assert metric_name(stat) == name


@pytest.mark.parametrize("stat", ["", "   ", "x" * 256])
def test_names_that_map_to_nothing_valid_are_refused(stat):
    with pytest.raises(BadStatName):
        metric_name(stat)


def test_a_tilde_fans_out():
    assert metric_names("messages sent~total,europe") == [
        "messages_sent_total",
        "messages_sent_europe",
    ]


def ez(client, **params):
    return client.get("/ez?" + urllib.parse.urlencode(params))


def test_ez_by_get_counts_and_values(client, app, api_key):
    assert ez(client, ezkey=api_key, stat="page views", count=3).get_json() == {
        "status": 200,
        "msg": "ok",
    }
    assert ez(client, email=api_key, stat="page views").status_code == 200  # count defaults to 1
    assert ez(client, ezkey=api_key, stat="load time", value=0.25).status_code == 200
    assert sorted(v for _, v in stored_points(app, "page_views")) == [1.0, 3.0]
    assert [v for _, v in stored_points(app, "load_time")] == [0.25]


def test_vb_zero_answers_204_and_t_may_be_milliseconds(client, app, api_key):
    moment = (utcnow() - timedelta(hours=1)).replace(microsecond=0)
    millis = int(
        (
            moment
            - utcnow().replace(year=1970, month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
        ).total_seconds()
        * 1000
    )
    response = ez(client, ezkey=api_key, stat="timed", count=1, t=millis, vb=0)
    assert response.status_code == 204 and response.get_data() == b""
    assert [t for t, _ in stored_points(app, "timed")] == [moment]


def test_ez_json_batches_and_form_bodies_with_raw_spaces(client, app, api_key):
    body = {
        "ezkey": api_key,
        "data": [{"stat": "batch stat", "count": 2}, {"stat": "batch value", "value": 7}],
    }
    assert client.post("/ez", data=json.dumps(body)).get_json()["status"] == 200
    raw = f"ezkey={api_key}&stat=raw spaces~a,b&count=5".encode()
    assert (
        client.post("/ez", data=raw, content_type="application/x-www-form-urlencoded").status_code
        == 200
    )
    assert [v for _, v in stored_points(app, "batch_stat")] == [2.0]
    assert [v for _, v in stored_points(app, "raw_spaces_a")] == [5.0]
    assert [v for _, v in stored_points(app, "raw_spaces_b")] == [5.0]


def test_errors_are_stathat_shaped(client, app, api_key):
    bad = ez(client, ezkey="gf_" + "0" * 43, stat="x", count=1)
    assert bad.status_code == 401 and bad.get_json()["status"] == 401 and bad.get_json()["msg"]
    reader, _ = create_key(get_store(app), "reader", None, "read")
    assert ez(client, ezkey=reader, stat="x", count=1).get_json()["status"] == 403
    ez(client, ezkey=api_key, stat="typed", count=1)
    clash = ez(client, ezkey=api_key, stat="typed", value=2)
    assert clash.status_code == 409 and clash.get_json()["status"] == 409
    assert ez(client, ezkey=api_key, stat="x" * 300, count=1).get_json()["status"] == 400
    assert ez(client, ezkey=api_key, stat="x", count="lots").get_json()["status"] == 400
    assert ez(client, ezkey=api_key, stat="x", count=1).headers["Connection"] == "close"
    for key in ([api_key], {"k": api_key}, 7, None, True):  # a JSON body's key of another type
        odd = client.post("/ez", json={"ezkey": key, "data": [{"stat": "x", "count": 1}]})
        assert odd.status_code == 401 and odd.get_json()["status"] == 401


def test_only_admin_keys_import_history(client, app, api_key):
    old = isoformat_z(utcnow() - timedelta(days=30))
    refused = ez(client, ezkey=api_key, stat="history", count=1, t=old)
    assert refused.status_code == 400 and "recorded_at" in refused.get_json()["msg"]
    admin, _ = create_key(get_store(app), "importer", None, "admin")
    assert ez(client, ezkey=admin, stat="history", count=1, t=old).status_code == 200
    body = {"name": "history", "recorded_at": old}
    assert (
        client.post("/api/metrics/counter", json=body, headers={"X-API-Key": admin}).status_code
        == 201
    )
    assert len(stored_points(app, "history")) == 2


def test_classic_count_and_value_with_a_stat_key(client, app, runner, api_key):
    result = runner.invoke(args=["metrics", "stat-key", "signups per day"])
    assert result.exit_code == 0 and "signups_per_day" in result.output
    stat_key = result.stdout.splitlines()[-1]
    assert (
        client.post("/c", data={"key": stat_key, "ukey": api_key, "count": 4}).get_json()["status"]
        == 200
    )
    for bad in ("nope", "gs_é" + stat_key[4:], stat_key[:-1] + "\x00"):
        answer = client.post("/c", data={"key": bad, "ukey": api_key, "count": 4})
        assert answer.status_code == 404 and answer.get_json()["msg"] == "unknown stat key"
    assert [v for _, v in stored_points(app, "signups_per_day")] == [4.0]
    value_key = runner.invoke(args=["metrics", "stat-key", "queue depth"]).stdout.splitlines()[-1]
    assert client.get(f"/v?key={value_key}&ukey={api_key}&value=12.5").status_code == 200
    assert [v for _, v in stored_points(app, "queue_depth")] == [12.5]


def test_a_flood_of_bad_ezkeys_is_limited_per_address(make_app):
    client = make_app(AUTH_FAILURE_LIMIT=3).test_client()
    codes = [ez(client, ezkey=f"gf_{n:043d}", stat="x", count=1).status_code for n in range(5)]
    assert codes == [401, 401, 401, 429, 429]


@pytest.fixture(scope="module")
def node_client(tmp_path_factory):
    """The official Node client from the npm registry, in a directory of its own."""
    npm = shutil.which("npm")
    assert npm and shutil.which("node"), "Node.js and npm are needed (make test installs them)"
    directory = tmp_path_factory.mktemp("node")
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent", NODE_CLIENT],
        cwd=directory,
        check=True,
        timeout=300,
    )
    return directory


REDIRECT = """
const http = require('http');
const original = http.request;
http.request = (options, callback) =>
  original({...options, hostname: '127.0.0.1', port: PORT}, callback);
const stathat = require('stathat');
const calls = JSON.parse(process.argv[2]);
let pending = calls.length;
for (const [method, args] of calls) {
  stathat[method](...args, (status, body) => {
    console.log(JSON.stringify([method, status, String(body)]));
    if (--pending === 0) process.exit(0);
  });
}
"""


def test_the_official_node_client_posts_counts_values_and_fan_outs(
    app, database_url, serve, node_client
):
    server = serve(DATABASE_URL=database_url, LOG_LEVEL="INFO")
    key = new_key(app)
    script = node_client / "post.js"
    script.write_text(REDIRECT.replace("PORT", str(server.port)))
    calls = [
        ["trackEZCount", [key, "node signups", 2]],
        ["trackEZValue", [key, "node latency ms", 12.5]],
        ["trackEZCount", [key, "node pages~home,about", 1]],
        ["trackEZCountWithTime", [key, "node signups", 3, int(utcnow().timestamp()) - 120]],
    ]
    out = subprocess.run(
        ["node", str(script), json.dumps(calls)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    answers = [json.loads(line) for line in out.stdout.splitlines()]
    assert [status for _, status, _ in answers] == [200] * 4
    assert all(json.loads(body) == {"status": 200, "msg": "ok"} for _, _, body in answers)
    assert sorted(v for _, v in stored_points(app, "node_signups")) == [2.0, 3.0]
    assert [v for _, v in stored_points(app, "node_latency_ms")] == [12.5]
    assert (
        len(stored_points(app, "node_pages_home"))
        == len(stored_points(app, "node_pages_about"))
        == 1
    )
    server.stop()
    assert key not in server.errors()  # the key travelled in the body and the query only


def test_flask_stathat_posts_json_batches(app, database_url, serve):
    from flask_stathat import StatHat

    server = serve(DATABASE_URL=database_url)
    client_app = Flask("client")
    client_app.config["STATHAT_EZ_KEY"] = new_key(app)
    stathat = StatHat(client_app)
    stathat.url = server.base + "/ez"

    @client_app.get("/work")
    def work():
        stathat.count("flask jobs", 2)
        stathat.value("flask duration", 0.75)
        return "done"

    assert client_app.test_client().get("/work").status_code == 200
    assert [v for _, v in stored_points(app, "flask_jobs")] == [2.0]
    assert [v for _, v in stored_points(app, "flask_duration")] == [0.75]
    stathat.session.close()
    ISSUED_KEYS.append(client_app.config["STATHAT_EZ_KEY"])


def test_a_query_string_key_never_reaches_the_log(app, database_url, serve):
    server = serve(DATABASE_URL=database_url, LOG_LEVEL="INFO")
    key = new_key(app)
    assert call(server, "GET", f"/ez?ezkey={key}&stat=logged&count=1")[0] == 200
    server.stop()
    assert key not in server.errors() and "ezkey" not in server.errors()
