"""Alert evaluation with a clock the test controls (`flask alerts evaluate --now`): each kind
fires and resolves at the right minute on both backends, and its webhook notices reach a real
local receiver, signed, once each."""

import hashlib
import hmac
import json
import re
import threading
from datetime import UTC, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.core.timeutil import isoformat_z, utcnow
from app.db import alerts as alerts_rows
from app.db import get_store
from app.db.errors import LockBusy
from app.jobs import alerts as evaluation
from tests.helpers import new_key

ALERTS = "/api/alerts"


class Receiver:
    """A webhook receiver on loopback: what it got, and the status it answers."""

    def __init__(self):
        self.received, self.status = [], 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def notices(self, secret):
        """The bodies received, each checked against its signature."""
        found = []
        for headers, body in self.received:
            stamp = headers["X-Glowing-Fiesta-Timestamp"]
            expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
            assert headers["X-Glowing-Fiesta-Signature"] == f"sha256={expected.hexdigest()}"
            found.append(json.loads(body))
        return found


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.server.shutdown()
    running.server.server_close()


@pytest.fixture
def setup(make_app):
    app = make_app(ALERTS_ALLOW_PRIVATE_TARGETS=True, PUBLIC_URL="https://gf.example.com")
    auth = {"X-API-Key": new_key(app)}
    base = (utcnow() - timedelta(minutes=30)).replace(second=0, microsecond=0)
    return app, app.test_client(), auth, base


def write(client, auth, kind, name, value, at):
    body = {"name": name, "recorded_at": isoformat_z(at)}
    if kind == "value":
        body["value"] = value
    response = client.post(f"/api/metrics/{kind}", json=body, headers=auth)
    assert response.status_code == 201, response.get_json()


def evaluate(app, at):
    result = app.test_cli_runner().invoke(args=["alerts", "evaluate", "--now", isoformat_z(at)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def create(client, auth, body):
    response = client.post(ALERTS, json=body, headers=auth)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def state(client, auth, alert):
    return client.get(f"{ALERTS}/{alert['id']}", headers=auth).get_json()["state"]


def test_a_value_alert_fires_and_resolves_at_the_minute_boundary(setup, receiver):
    app, client, auth, base = setup
    for second in (10, 20, 30):
        write(client, auth, "counter", "errors", 1, base + timedelta(seconds=second))
    alert = create(client, auth, {"metric": "errors", "kind": "value", "window": "1m",
                                  "condition": ">", "threshold": 2,
                                  "notify": [f"webhook:{receiver.url}"]})  # fmt: skip
    # The minute holding the points is still open: never judged half-filled.
    evaluate(app, base + timedelta(seconds=45))
    assert state(client, auth, alert) == "ok" and receiver.received == []
    evaluate(app, base + timedelta(minutes=1, seconds=5))
    assert state(client, auth, alert) == "firing"
    evaluate(app, base + timedelta(minutes=1, seconds=40))  # the same boundary: judged once
    evaluate(app, base + timedelta(minutes=2))
    assert state(client, auth, alert) == "ok"
    notices = receiver.notices(alert["secret"])
    assert [n["state"] for n in notices] == ["firing", "ok"]
    firing = notices[0]
    assert firing["value"] == 3 and firing["threshold"] == 2 and firing["alert"] == alert["id"]
    assert firing["evaluated_at"] == isoformat_z(base + timedelta(minutes=1))
    assert firing["url"] == "https://gf.example.com/?metric=errors"
    assert firing["kind"] == "value" and firing["window"] == "1m" and firing["metric"] == "errors"
    assert notices[0]["id"] != notices[1]["id"]
    events = client.get(f"{ALERTS}/{alert['id']}/events", headers=auth).get_json()["data"]
    assert [(e["type"], e["state"], e.get("outcome")) for e in events] == [
        ("transition", "firing", None), ("notice", "firing", "sent"),
        ("transition", "ok", None), ("notice", "ok", "sent"),
    ]  # fmt: skip


def test_a_value_alert_reads_through_its_filters(setup, receiver):
    app, client, auth, base = setup
    for host, value in (("web-1", 900), ("web-2", 10)):
        response = client.post("/api/metrics/value", json={"name": "latency", "value": value,
                               "recorded_at": isoformat_z(base), "tags": {"host": host}},
                               headers=auth)  # fmt: skip
        assert response.status_code == 201
    hook = f"webhook:{receiver.url}"
    quiet = create(client, auth, {"metric": "latency", "kind": "value", "window": "5m",
                                  "condition": ">", "threshold": 100, "filters": ["host=web-2"],
                                  "notify": [hook]})  # fmt: skip
    loud = create(client, auth, {"metric": "latency", "kind": "value", "window": "5m",
                                 "operation": "max", "condition": ">", "threshold": 100,
                                 "notify": [hook]})  # fmt: skip
    evaluate(app, base + timedelta(minutes=1))
    assert (state(client, auth, quiet), state(client, auth, loud)) == ("ok", "firing")


def test_an_empty_window_never_fires_a_value_alert(setup, receiver):
    app, client, auth, base = setup
    write(client, auth, "value", "temp", 5, base - timedelta(hours=2))
    alert = create(client, auth, {"metric": "temp", "kind": "value", "window": "1m",
                                  "condition": "<", "threshold": 100,
                                  "notify": [f"webhook:{receiver.url}"]})  # fmt: skip
    evaluate(app, base)
    assert state(client, auth, alert) == "ok" and receiver.received == []


def test_a_delta_alert_compares_with_the_window_before(setup, receiver):
    app, client, auth, base = setup
    write(client, auth, "value", "signups", 100, base - timedelta(hours=1))
    write(client, auth, "value", "signups", 200, base)
    alert = create(client, auth, {"metric": "signups", "kind": "delta", "window": "1m",
                                  "percent": 50, "direction": "up", "compare": "1h",
                                  "notify": [f"webhook:{receiver.url}"]})  # fmt: skip
    evaluate(app, base)  # the window before holds nothing: no verdict to fire on
    assert state(client, auth, alert) == "ok"
    evaluate(app, base + timedelta(minutes=1))
    assert state(client, auth, alert) == "firing"
    evaluate(app, base + timedelta(minutes=2))
    assert state(client, auth, alert) == "ok"
    firing = receiver.notices(alert["secret"])[0]
    assert (firing["value"], firing["baseline"], firing["state"]) == (200, 100, "firing")


def test_a_delta_alert_counts_a_rise_from_zero_as_infinite(setup, receiver):
    app, client, auth, base = setup
    write(client, auth, "value", "refunds", 0, base - timedelta(hours=1))
    write(client, auth, "value", "refunds", 1, base)
    alert = create(client, auth, {"metric": "refunds", "kind": "delta", "window": "1m",
                                  "percent": 1000000, "compare": "1h",
                                  "notify": [f"webhook:{receiver.url}"]})  # fmt: skip
    evaluate(app, base + timedelta(minutes=1))
    assert state(client, auth, alert) == "firing"


def test_a_data_alert_fires_when_points_stop_and_waits_for_its_metric(setup, receiver):
    app, client, auth, base = setup
    hook = [f"webhook:{receiver.url}"]
    waiting = create(client, auth, {"metric": "heartbeat", "kind": "data", "window": "5m",
                                    "notify": hook})  # fmt: skip
    evaluate(app, base)
    assert state(client, auth, waiting) == "ok"  # no metric yet: nothing has stopped
    write(client, auth, "counter", "heartbeat", 1, base)
    for minute in range(1, 6):
        evaluate(app, base + timedelta(minutes=minute))
        assert state(client, auth, waiting) == "ok", minute
    evaluate(app, base + timedelta(minutes=6))  # [+1, +6) holds no point
    assert state(client, auth, waiting) == "firing"
    write(client, auth, "counter", "heartbeat", 1, base + timedelta(minutes=6, seconds=1))
    evaluate(app, base + timedelta(minutes=7))
    assert state(client, auth, waiting) == "ok"
    assert [n["state"] for n in receiver.notices(waiting["secret"])] == ["firing", "ok"]


def test_repeat_reminds_while_firing(setup, receiver):
    app, client, auth, base = setup
    write(client, auth, "value", "queue.depth", 500, base - timedelta(minutes=50))
    alert = create(client, auth, {"metric": "queue.depth", "kind": "data", "window": "5m",
                                  "repeat": 2, "notify": [f"webhook:{receiver.url}"]})  # fmt: skip
    for minute in range(5):
        evaluate(app, base + timedelta(minutes=minute))
    assert [n["state"] for n in receiver.notices(alert["secret"])] == ["firing"] * 3


def test_a_failed_notice_is_retried_with_back_off_and_delivered_once(setup, receiver):
    app, client, auth, base = setup
    write(client, auth, "value", "cpu", 1, base - timedelta(minutes=50))
    alert = create(client, auth, {"metric": "cpu", "kind": "data", "window": "1m",
                                  "notify": [f"webhook:{receiver.url}"]})  # fmt: skip
    receiver.status = 503
    evaluate(app, base)
    assert len(receiver.received) == 1
    receiver.received.clear()
    receiver.status = 200
    evaluate(app, base + timedelta(seconds=30))  # not due yet: the first pause is a minute
    assert receiver.received == []
    evaluate(app, base + timedelta(minutes=1))
    evaluate(app, base + timedelta(minutes=2))
    evaluate(app, base + timedelta(minutes=10))
    assert len(receiver.notices(alert["secret"])) == 1
    events = client.get(f"{ALERTS}/{alert['id']}/events", headers=auth).get_json()["data"]
    assert [e.get("outcome") for e in events if e["type"] == "notice"] == ["retrying", "sent"]
    assert get_store(app).pending_notices() == 0


def test_one_evaluator_at_a_time(setup, receiver):
    app, client, auth, base = setup
    store = get_store(app)
    with store.alerts_lock():
        assert "skipped" in evaluation.tick(store, app.config, base)
        with pytest.raises(LockBusy):
            with store.alerts_lock():
                pass
    assert evaluation.tick(store, app.config, base)["evaluated"] == 0


def test_a_private_webhook_is_refused_at_send_time_without_the_setting(make_app, receiver):
    app = make_app()
    store = get_store(app)
    settings = dict(app.config)
    with pytest.raises(evaluation.DeliveryError):
        evaluation.send(settings, {"secret": "s"}, f"webhook:{receiver.url}", b"{}")
    assert receiver.received == [] and store is not None


def test_metrics_endpoint_counts_alerts_by_state_and_notices_by_outcome(setup, receiver):
    app, client, auth, base = setup
    for second in (10, 20, 30):
        write(client, auth, "counter", "errors", 1, base + timedelta(seconds=second))
    body = {"metric": "errors", "kind": "value", "window": "1m", "condition": ">",
            "threshold": 2, "notify": [f"webhook:{receiver.url}"]}  # fmt: skip
    create(client, auth, body)
    create(client, auth, {**body, "threshold": 100})
    evaluate(app, base + timedelta(minutes=1, seconds=5))
    scraped = client.get("/metrics").get_data(as_text=True)
    assert 'gf_alerts{state="firing"} 1.0' in scraped and 'gf_alerts{state="ok"} 1.0' in scraped
    assert 'gf_alert_notices{outcome="sent"} 1.0' in scraped
    assert 'gf_alert_notices{outcome="pending"} 0.0' in scraped
    evaluated = (base + timedelta(minutes=1)).replace(tzinfo=UTC).timestamp()
    last = re.search(r"^gf_alerts_last_evaluation_timestamp_seconds (\S+)$", scraped, re.M)
    assert float(last.group(1)) == evaluated


def test_retention_sweeps_alert_history_past_its_days(setup, receiver):
    app, client, auth, base = setup
    for second in (10, 20, 30):
        write(client, auth, "counter", "errors", 1, base + timedelta(seconds=second))
    alert = create(client, auth, {"metric": "errors", "kind": "value", "window": "1m",
                                  "condition": ">", "threshold": 2,
                                  "notify": [f"webhook:{receiver.url}"]})  # fmt: skip
    evaluate(app, base + timedelta(minutes=1, seconds=5))
    events = f"{ALERTS}/{alert['id']}/events"
    assert len(client.get(events, headers=auth).get_json()["data"]) == 2
    store = get_store(app)
    assert store.trim(now=isoformat_z(utcnow()))["alert_history_deleted"] == 0  # too young
    later = store.trim(
        now=isoformat_z(utcnow() + timedelta(days=alerts_rows.HISTORY_DAYS, minutes=5))
    )
    assert later["alert_history_deleted"] == 3  # two events and the sent notice
    assert client.get(events, headers=auth).get_json()["data"] == []
    assert client.get(f"{ALERTS}/{alert['id']}", headers=auth).get_json()["state"] == "firing"


def test_a_p99_alert_fires_on_the_slow_tail_and_a_counter_s_percentile_is_refused(setup, receiver):
    app, client, auth, base = setup
    for second in range(1, 51):  # 49 fast requests and one slow: p99 of 50 is the 50th
        write(client, auth, "value", "latency", 2000.0 if second == 50 else 20.0,
              base + timedelta(seconds=second))  # fmt: skip
    write(client, auth, "counter", "errors", 1, base)
    alert = create(client, auth, {"metric": "latency", "kind": "value", "window": "1m",
                                  "operation": "p99", "condition": ">", "threshold": 1000,
                                  "notify": [f"webhook:{receiver.url}"]})  # fmt: skip
    assert alert["operation"] == "p99"
    evaluate(app, base + timedelta(minutes=1))
    assert state(client, auth, alert) == "firing"
    (notice,) = receiver.notices(alert["secret"])
    assert abs(notice["value"] - 2000) <= 20  # within 1 %: from the minute's sketch
    refused = client.post(ALERTS, json={"metric": "errors", "kind": "value", "window": "1m",
                                        "operation": "p50", "condition": ">", "threshold": 1,
                                        "notify": [f"webhook:{receiver.url}"]},
                          headers=auth)  # fmt: skip
    assert refused.status_code == 400
    assert refused.get_json()["error"]["code"] == "VALIDATION_ERROR"
    changed = client.patch(f"{ALERTS}/{alert['id']}", json={"metric": "errors"}, headers=auth)
    assert changed.status_code == 400  # p99 of a counter
    changed = client.patch(f"{ALERTS}/{alert['id']}", json={"operation": "p50"}, headers=auth)
    assert changed.status_code == 200 and changed.get_json()["operation"] == "p50"
