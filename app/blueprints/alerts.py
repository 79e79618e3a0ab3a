"""/api/alerts: a tenant's alerts — create (the webhook signing secret shown once), list, read,
change, delete, their events, a new secret, a test notice to every target. Read scope may
read; write scope creates, changes, deletes and tests. Another tenant's alert answers exactly
as a missing one (404 NOT_FOUND). Every change is logged with who made it, never a secret."""

import logging

from flask import Blueprint, current_app, g, jsonify

from app.api.alert_schemas import AlertChangeSchema, AlertCreateSchema
from app.api.auth import requires, tenant_id
from app.api.body import read_body
from app.api.errors import ApiError, metric_not_found
from app.api.principals import READ, WRITE
from app.core.alerts import KIND_FIELDS, RULE_FIELDS, new_secret
from app.core.constants import PERCENTILES
from app.core.timeutil import isoformat_z, utcnow
from app.db import get_store
from app.jobs.alerts import send_test

bp = Blueprint("alerts", __name__, url_prefix="/api/alerts")
log = logging.getLogger(__name__)
MAX_ALERT_ID = 2**31 - 1


def _time(moment):
    return isoformat_z(moment) if moment else None


def describe(alert):
    """An alert as the API shows it: never its secret."""
    shown = {
        "id": alert["id"],
        "metric": alert["metric"],
        "kind": alert["kind"],
        "window": alert["window"],
    }
    for name in KIND_FIELDS[alert["kind"]]:
        shown[name] = alert[name]
    shown.update(
        filters=alert["filters"],
        notify=alert["notify"],
        repeat=alert["repeat"],
        state=alert["state"],
        value=alert["value"],
    )
    if alert["kind"] == "delta":
        shown["baseline"] = alert["baseline"]
    shown.update(
        evaluated_at=_time(alert["evaluated_at"]),
        changed_at=_time(alert["changed_at"]),
        created_at=_time(alert["created_at"]),
    )
    return shown


def _schema(kind):
    allow = current_app.config["ALERTS_ALLOW_PRIVATE_TARGETS"]
    return kind(allow_private=allow)


def _own_alert(alert_id):
    """The calling tenant's alert ``alert_id``; 404 NOT_FOUND for a missing or another
    tenant's."""
    alert = None
    if alert_id <= MAX_ALERT_ID:  # larger is no id (and past what SQLite can compare)
        alert = get_store(current_app).alert(alert_id, tenant_id())
    if alert is None:
        raise ApiError("NOT_FOUND", f"No alert {alert_id}", status=404)
    return alert


def _needs_metric(kind, metric, operation=None, must_exist=True):
    """A value or delta alert watches an existing metric (404 METRIC_NOT_FOUND); a data alert
    may wait for one that does not exist yet. A percentile watches a value metric (400
    VALIDATION_ERROR)."""
    if kind == "data":
        return
    found = get_store(current_app).metric(tenant_id(), metric)
    if found is None and must_exist:
        raise metric_not_found([metric])
    if found is not None and operation in PERCENTILES and found.type != "value":
        message = f"{operation} is a percentile of value metrics; {metric} counts"
        raise ApiError("VALIDATION_ERROR", message, details={"operation": [message]})


def _logged(action, alert, **what):
    log.info(
        "alert %s: alert %s (%s on %s) of tenant %s by %s%s",
        action, alert["id"], alert["kind"], alert["metric"], g.api_key.tenant.name,
        g.api_key.who,
        "".join(f", {name} {value}" for name, value in what.items()),
    )  # fmt: skip


@bp.post("")
@requires(WRITE)
def create():
    """Create an alert in the caller's tenant; its secret is in this answer and nowhere else."""
    body = _schema(AlertCreateSchema).load(read_body())
    _needs_metric(body["kind"], body["metric"], body.get("operation"))
    secret = new_secret()
    alert = get_store(current_app).create_alert(tenant_id(), body, secret, utcnow())
    _logged("created", alert)
    response = jsonify(success=True, **describe(alert), secret=secret)
    response.status_code = 201
    return response


@bp.get("")
@requires(READ)
def list_alerts():
    """The caller's tenant's alerts, oldest first, each with its state."""
    alerts = get_store(current_app).list_alerts(tenant_id())
    return jsonify(success=True, data=[describe(alert) for alert in alerts])


@bp.get("/<int:alert_id>")
@requires(READ)
def read(alert_id):
    """One alert."""
    return jsonify(success=True, **describe(_own_alert(alert_id)))


@bp.patch("/<int:alert_id>")
@requires(WRITE)
def change(alert_id):
    """Change some of an alert's fields (not its kind)."""
    body = _schema(AlertChangeSchema).load(read_body())
    alert = _own_alert(alert_id)
    foreign = sorted(
        name for name in body if name in RULE_FIELDS and name not in KIND_FIELDS[alert["kind"]]
    )
    if foreign:
        raise ApiError(
            "ALERT_KIND_MISMATCH",
            f"Alert {alert_id} is a {alert['kind']} alert, which has no " + ", ".join(foreign),
            status=409,
            details={name: [f"Not a field of a {alert['kind']} alert."] for name in foreign},
        )
    if "metric" in body or "operation" in body:
        metric = body.get("metric", alert["metric"])
        operation = body.get("operation", alert.get("operation"))
        _needs_metric(alert["kind"], metric, operation, must_exist="metric" in body)
    changed = get_store(current_app).change_alert(alert["id"], body, utcnow())
    _logged("changed", changed, fields=",".join(sorted(body)))
    return jsonify(success=True, **describe(changed))


@bp.delete("/<int:alert_id>")
@requires(WRITE)
def delete(alert_id):
    """Delete an alert with its events; notices not yet sent are dropped."""
    alert = _own_alert(alert_id)
    get_store(current_app).delete_alert(alert["id"])
    _logged("deleted", alert)
    return jsonify(success=True, message="Alert deleted", id=alert["id"])


@bp.get("/<int:alert_id>/events")
@requires(READ)
def events(alert_id):
    """An alert's transitions and its notices' outcomes, oldest first (the latest 1000)."""
    alert = _own_alert(alert_id)
    rows = get_store(current_app).alert_events(alert["id"])
    data = []
    for row in rows:
        event = {"at": isoformat_z(row.at), "type": row.type, "state": row.state}
        if row.channel is not None:
            event["channel"] = row.channel
        if row.outcome is not None:
            event["outcome"] = row.outcome
        if row.notice_id is not None:
            event["notice"] = row.notice_id
        data.append(event)
    return jsonify(success=True, data=data)


@bp.post("/<int:alert_id>/secret")
@requires(WRITE)
def rotate_secret(alert_id):
    """Replace an alert's webhook signing secret; the new one is in this answer only."""
    alert = _own_alert(alert_id)
    secret = new_secret()
    get_store(current_app).set_alert_secret(alert["id"], secret, utcnow())
    _logged("secret rotated", alert)
    return jsonify(success=True, id=alert["id"], secret=secret)


@bp.post("/<int:alert_id>/test")
@requires(WRITE)
def test_notice(alert_id):
    """Send a test notice to every target now (no retries); what each did with it."""
    alert = _own_alert(alert_id)
    notice_id, results = send_test(get_store(current_app), current_app.config, alert)
    _logged("tested", alert, sent=sum(r["outcome"] == "sent" for r in results))
    return jsonify(success=True, id=notice_id, results=results)
