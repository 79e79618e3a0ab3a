"""Alerts over HTTP: validation, each route, scopes and tenant isolation, on both backends."""

import pytest

from app.api.auth import create_key
from app.core.timeutil import utcnow
from app.db import get_store
from tests.helpers import ISSUED_KEYS, new_key

ALERTS = "/api/alerts"
HOOK = "webhook:https://hooks.example.com/gf"
VALUE = {"metric": "page.views", "kind": "value", "window": "5m", "condition": ">",
         "threshold": 10, "notify": [HOOK, "email:ops@example.com"]}  # fmt: skip
DELTA = {"metric": "page.views", "kind": "delta", "window": "1h", "percent": 50,
         "notify": [HOOK]}  # fmt: skip
DATA = {"metric": "not.yet", "kind": "data", "window": "15m", "notify": [HOOK]}


def ok(response, status=200):
    assert response.status_code == status, response.get_json()
    return response.get_json()


def refused(response, status, code):
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"]["code"] == code
    return response.get_json()["error"]


@pytest.fixture
def metric(client, auth):
    ok(client.post("/api/metrics/counter", json={"name": "page.views"}, headers=auth), 201)
    return "page.views"


def tenant_key(app, name, scopes="read,write"):
    store = get_store(app)
    tenant = store.tenant(name) or store.create_tenant(name, utcnow(), {})
    raw, _ = create_key(store, f"{name} key", None, scopes, tenant.id)
    ISSUED_KEYS.append(raw)
    return {"X-API-Key": raw}


def test_each_kind_is_created_with_its_fields_and_a_secret_shown_once(client, auth, metric):
    value = ok(client.post(ALERTS, json=VALUE, headers=auth), 201)
    assert value["kind"] == "value" and value["condition"] == ">" and value["threshold"] == 10
    assert value["state"] == "ok" and value["repeat"] == 0 and value["filters"] == []
    assert len(value["secret"]) == 64
    delta = ok(client.post(ALERTS, json=DELTA, headers=auth), 201)
    assert (delta["direction"], delta["compare"], delta["percent"]) == ("either", "1d", 50)
    assert "threshold" not in delta
    data = ok(client.post(ALERTS, json=DATA, headers=auth), 201)  # its metric may come later
    assert "operation" not in data and "threshold" not in data
    shown = ok(client.get(f"{ALERTS}/{value['id']}", headers=auth))
    assert "secret" not in shown and shown["notify"] == VALUE["notify"]
    listed = ok(client.get(ALERTS, headers=auth))["data"]
    assert [a["id"] for a in listed] == [value["id"], delta["id"], data["id"]]
    assert all(a["state"] == "ok" and "secret" not in a for a in listed)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "percentile"}, "kind"),
        ({"window": "2m"}, "window"),
        ({"operation": "median"}, "operation"),
        ({"condition": ">="}, "condition"),
        ({"threshold": "10"}, "threshold"),
        ({"threshold": None}, "threshold"),
        ({"percent": 5}, "percent"),  # not a field of a value alert
        ({"notify": []}, "notify"),
        ({"notify": ["sms:+15550100"]}, "notify"),
        ({"notify": ["email:not-an-address"]}, "notify"),
        ({"notify": ["webhook:ftp://example.com/x"]}, "notify"),
        ({"notify": ["webhook:http://127.0.0.1:9000/x"]}, "notify"),
        ({"notify": ["webhook:http://localhost/x"]}, "notify"),
        ({"notify": ["webhook:http://10.1.2.3/x"]}, "notify"),
        ({"notify": ["webhook:http://169.254.169.254/latest"]}, "notify"),
        ({"notify": ["webhook:http://2130706433/"]}, "notify"),
        ({"repeat": -1}, "repeat"),
        ({"repeat": True}, "repeat"),
        ({"filters": ["host=~("]}, "filters"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_body_is_refused_naming_the_field(client, auth, metric, change, field):
    error = refused(client.post(ALERTS, json={**VALUE, **change}, headers=auth), 400,
                    "VALIDATION_ERROR")  # fmt: skip
    assert field in error["details"]


def test_a_kind_needs_its_own_fields(client, auth, metric):
    body = {k: v for k, v in VALUE.items() if k != "threshold"}
    assert "threshold" in refused(client.post(ALERTS, json=body, headers=auth), 400,
                                  "VALIDATION_ERROR")["details"]  # fmt: skip
    body = {**DATA, "metric": metric, "window": "1w", "threshold": 3}
    assert "threshold" in refused(client.post(ALERTS, json=body, headers=auth), 400,
                                  "VALIDATION_ERROR")["details"]  # fmt: skip


def test_private_targets_are_allowed_by_the_setting(make_app):
    app = make_app(ALERTS_ALLOW_PRIVATE_TARGETS=True)
    client, auth = app.test_client(), {"X-API-Key": new_key(app)}
    body = {**DATA, "notify": ["webhook:http://127.0.0.1:9000/x", "webhook:http://localhost/"]}
    ok(client.post(ALERTS, json=body, headers=auth), 201)


def test_value_and_delta_alerts_need_an_existing_metric(client, auth):
    for body in (VALUE, DELTA):
        refused(client.post(ALERTS, json=body, headers=auth), 404, "METRIC_NOT_FOUND")
    ok(client.post(ALERTS, json=DATA, headers=auth), 201)


def test_change_delete_events_and_secret(client, auth, metric):
    created = ok(client.post(ALERTS, json=VALUE, headers=auth), 201)
    url = f"{ALERTS}/{created['id']}"
    changed = ok(client.patch(url, json={"threshold": 20, "repeat": 30,
                                         "filters": ["host=web-1"]}, headers=auth))  # fmt: skip
    assert (changed["threshold"], changed["repeat"], changed["filters"]) == (20, 30, ["host=web-1"])
    refused(client.patch(url, json={"percent": 5}, headers=auth), 409, "ALERT_KIND_MISMATCH")
    refused(client.patch(url, json={"kind": "data"}, headers=auth), 400, "VALIDATION_ERROR")
    refused(client.patch(url, json={}, headers=auth), 400, "VALIDATION_ERROR")
    refused(client.patch(url, json={"metric": "nope"}, headers=auth), 404, "METRIC_NOT_FOUND")
    assert ok(client.get(f"{url}/events", headers=auth))["data"] == []
    rotated = ok(client.post(f"{url}/secret", headers=auth))
    assert len(rotated["secret"]) == 64 and rotated["secret"] != created["secret"]
    assert get_store(client.application).alert(created["id"])["secret"] == rotated["secret"]
    assert ok(client.delete(url, headers=auth))["id"] == created["id"]
    refused(client.get(url, headers=auth), 404, "NOT_FOUND")
    refused(client.get(f"{ALERTS}/{2**40}", headers=auth), 404, "NOT_FOUND")


def test_read_scope_reads_and_write_scope_writes(app, client, auth, metric):
    created = ok(client.post(ALERTS, json=VALUE, headers=auth), 201)
    url = f"{ALERTS}/{created['id']}"
    reader = {"X-API-Key": new_key(app, "reader", scopes="read")}
    ok(client.get(ALERTS, headers=reader))
    ok(client.get(url, headers=reader))
    ok(client.get(f"{url}/events", headers=reader))
    for response in (
        client.post(ALERTS, json=VALUE, headers=reader),
        client.patch(url, json={"repeat": 5}, headers=reader),
        client.delete(url, headers=reader),
        client.post(f"{url}/secret", headers=reader),
    ):
        refused(response, 403, "FORBIDDEN")
    writer = {"X-API-Key": new_key(app, "writer", scopes="write")}
    refused(client.get(ALERTS, headers=writer), 403, "FORBIDDEN")
    ok(client.patch(url, json={"repeat": 5}, headers=writer))


def test_another_tenants_alert_is_not_found(app, client, auth, metric):
    created = ok(client.post(ALERTS, json=VALUE, headers=auth), 201)
    url = f"{ALERTS}/{created['id']}"
    other = tenant_key(app, "other")
    assert ok(client.get(ALERTS, headers=other))["data"] == []
    for response in (
        client.get(url, headers=other),
        client.get(f"{url}/events", headers=other),
        client.patch(url, json={"repeat": 5}, headers=other),
        client.delete(url, headers=other),
        client.post(f"{url}/secret", headers=other),
    ):
        refused(response, 404, "NOT_FOUND")
    # the metric is the default tenant's: the other tenant has none by that name
    refused(client.post(ALERTS, json=VALUE, headers=other), 404, "METRIC_NOT_FOUND")
    assert ok(client.get(url, headers=auth))["repeat"] == 0
