"""What an operator sees: one JSON access record per request (never a key, never a query
string), /metrics right across several gunicorn workers and accepted by promtool."""

import json
import logging
import subprocess
import urllib.request

import pytest

from app.infra.logs import TextFormatter
from tests.clients import Session, call, samples_of, scrape
from tests.helpers import new_key

COUNTER = "/api/metrics/counter"


def access_records(server):
    records = [json.loads(line) for line in server.log_lines()]
    return [r for r in records if r["logger"] == "glowing_fiesta.access"]


def test_one_access_record_per_request_without_keys_or_query_strings(app, database_url, serve):
    server = serve(DATABASE_URL=database_url, LOG_LEVEL="INFO", WEB_CONCURRENCY="2")
    key = new_key(app)
    sent = {
        "ok-1": ("POST", COUNTER, {"name": "logged"}, {"X-API-Key": key}),
        "bad-key": ("POST", COUNTER, {"name": "logged"}, {"X-API-Key": "gf_" + "x" * 43}),
        "query": ("GET", f"/api/metrics?prefix=log&api_key={key}", None, {"X-API-Key": key}),
        "missing": ("GET", "/api/metrics/nothing.here", None, {"X-API-Key": key}),
        "health": ("GET", "/health", None, {}),
    }
    for request_id, (method, path, body, headers) in sent.items():
        call(server, method, path, body, {**headers, "X-Request-ID": request_id})
    server.stop()
    ours = [r for r in access_records(server) if r["request_id"] in sent]  # not the start-up polls
    records = {r["request_id"]: r for r in ours}
    assert sorted(records) == sorted(sent) and len(ours) == len(sent)
    ok = records["ok-1"]
    assert (ok["method"], ok["route"], ok["status"], ok["key"]) == ("POST", COUNTER, 201, key[:11])
    assert ok["duration_ms"] >= 0 and ok["client"] == "127.0.0.1" and ok["level"] == "INFO"
    assert records["bad-key"]["status"] == 401 and "key" not in records["bad-key"]
    assert records["missing"]["route"] == "/api/metrics/<name>"  # the template, not the name
    assert all("path" not in record for record in ours)
    log_text = server.errors()
    assert "nothing.here" not in log_text
    assert key not in log_text and "api_key=" not in log_text
    assert all(line.startswith("{") for line in log_text.splitlines())


def metric(samples, name, **labels):
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for (sample, label_text), value in samples.items():
        if sample == name and ",".join(sorted(label_text.strip("{}").split(","))) == wanted:
            return value
    return 0.0


def test_metrics_count_a_known_load_exactly_across_workers(mysql_app, mysql_url, redis_url, serve):
    server = serve(DATABASE_URL=mysql_url, REDIS_URL=redis_url, WEB_CONCURRENCY="3", THREADS="4")
    session = Session(server, {"X-API-Key": new_key(mysql_app)})
    for n in range(30):
        assert session.post(COUNTER, {"name": f"known.{n % 3}"})[0] == 201
    batch = {
        "metrics": [
            {"name": "known.v", "type": "value", "value": 1},
            {"name": "bad name", "type": "value", "value": 1},
            {"name": "known.v", "type": "value"},
        ]
    }
    assert session.post("/api/metrics/batch", batch)[0] == 201
    for _ in range(4):
        assert session.post("/api/metrics/value", {"name": "known.v"})[0] == 400
    for _ in range(7):
        assert session.request("GET", "/api/metrics/aggregate?name=known.0")[0] == 200
    session.close()
    samples = scrape(server)
    assert metric(samples, "gf_points_ingested_total", type="counter") == 30
    assert metric(samples, "gf_points_ingested_total", type="value") == 1
    assert metric(samples, "gf_points_rejected_total", code="VALIDATION_ERROR") == 2 + 4
    assert metric(samples, "gf_writer_batch_requests_sum") == 31
    assert metric(samples, "gf_query_duration_seconds_count") == 7
    assert (
        metric(
            samples,
            "gf_http_requests_total",
            method="GET",
            route="/api/metrics/aggregate",
            status="200",
        )
        == 7
    )
    assert (
        metric(
            samples,
            "gf_http_requests_total",
            method="POST",
            route="/api/metrics/value",
            status="400",
        )
        == 4
    )
    assert metric(samples, "gf_rate_limit_memory_fallback") == 0
    assert ("gf_queue_jobs", '{queue="ingest",state="queued"}') in samples  # read from Redis


def test_promtool_accepts_the_exposition(app, database_url, serve):
    server = serve(DATABASE_URL=database_url, WEB_CONCURRENCY="2")
    call(server, "POST", COUNTER, {"name": "prom"}, {"X-API-Key": new_key(app)})
    with urllib.request.urlopen(server.base + "/metrics", timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read()
    checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True)
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()


def test_series_figures_are_totals_and_the_crowded_count_never_a_label_per_metric(make_app):
    app = make_app(METRICS_MAX_SERIES_PER_METRIC=5)
    client, headers = app.test_client(), {"X-API-Key": new_key(app)}

    def post(name, hosts):
        items = [{"name": name, "type": "counter", "tags": {"host": h}} for h in hosts]
        assert (
            client.post("/api/metrics/batch", json={"metrics": items}, headers=headers).status_code
            == 201
        )

    post("crowded", [f"h{n}" for n in range(5)])  # 5 of 5: past 80 %
    post("roomy", [f"h{n}" for n in range(4)])  # 4 of 5: at 80 %, not past it
    post("gone", [f"h{n}" for n in range(5)])
    assert (
        client.post("/api/metrics/counter", json={"name": "plain"}, headers=headers).status_code
        == 201
    )
    assert client.delete("/api/metrics/gone", headers=headers).status_code == 200
    text = client.get("/metrics").get_data(as_text=True)
    samples = samples_of(text)
    assert metric(samples, "gf_metrics") == 3
    assert metric(samples, "gf_series") == 5 + 4 + 1
    assert metric(samples, "gf_series_limit_per_metric") == 5
    assert metric(samples, "gf_metrics_near_series_limit") == 1
    assert metric(samples, "gf_metrics_limit") == app.config["METRICS_MAX_METRICS"]
    assert "crowded" not in text and "roomy" not in text


def test_the_metrics_endpoint_can_be_turned_off(make_app):
    client = make_app(METRICS_ENDPOINT_ENABLED=False).test_client()
    response = client.get("/metrics")
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize("extra", [{}, {"job": "retention", "rows": 3}])
def test_text_logs_read_as_one_line_each(extra):
    record = logging.LogRecord("app.x", logging.INFO, __file__, 1, "did %s", ("it",), None)
    record.__dict__.update(extra)
    line = TextFormatter().format(record)
    assert line.endswith("did it" + "".join(f" {k}={v}" for k, v in extra.items()))
    assert "\n" not in line and " INFO    app.x " in line
