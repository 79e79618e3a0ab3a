"""Alert evaluation and delivery: every alert of every tenant judged at the minute boundary
through the store's query engine, its transitions and notices recorded in one transaction with
the alert's row locked, then the notices due sent (webhooks signed, emails through SMTP_URL)
and retried with back-off.

One tick at a time: a tick holds the alerts' named lock, so two evaluators (gunicorn workers'
timers, two rq workers) never judge one alert at once, and an alert already judged at this
boundary is skipped. A notice is written to the outbox with the transition that made it, and
each attempt is recorded before it is made: a retry never sends a notice that was delivered,
and a crash between a send and its record repeats it once at most — every notice carries an
``id`` for receivers to drop a repeat.

The same code runs from rq-scheduler's entry (``evaluate``, every ALERTS_CRON), from the
embedded default's timer and from ``flask alerts evaluate``.
"""

import functools
import json
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from urllib.parse import quote

from app.core import alerts as rules
from app.core.tags import parse_filters
from app.core.timeutil import isoformat_z, parse_timestamp, utcnow
from app.db.errors import LockBusy
from app.db.planner import ResolutionUnavailable
from app.infra.notify import DeliveryError, send_email, send_webhook
from app.jobs import runtime

log = logging.getLogger(__name__)

# Pauses before each retry of a notice not delivered; then it is given up.
BACKOFF_SECONDS = (60, 120, 300, 600, 1800)


def evaluate(now=None):
    """RQ job (rq-scheduler's entry, every ALERTS_CRON): one tick."""
    moment = parse_timestamp(now) if now else None
    return tick(runtime.database(), runtime.settings(), moment)


def tick(store, settings, now=None):
    """Judge every alert at the minute boundary of ``now`` (default: the clock's) and send
    the notices due; what was done, or {"skipped": …} when another evaluator holds the lock."""
    now = now or utcnow()
    boundary = now.replace(second=0, microsecond=0)
    try:
        with store.alerts_lock():
            judged, fired, resolved = evaluate_all(store, settings, boundary)
            sent, failed = deliver(store, settings, now)
    except LockBusy:
        log.info("alerts: another evaluator is running; skipped")
        return {"skipped": "another evaluator is running"}
    return {"evaluated_at": isoformat_z(boundary), "evaluated": judged, "fired": fired,
            "resolved": resolved, "sent": sent, "failed": failed}  # fmt: skip


def _window_value(store, alert, operation, start, end, now):
    """The operation's value of the alert's metric (filtered) over [start, end); MISSING when
    the metric does not exist."""
    filters = parse_filters(alert["filters"], "filters")
    try:
        found = store.window_aggregate(
            alert["tenant_id"], alert["metric"], filters, operation, start, end, now
        )
    except ResolutionUnavailable:
        return None
    return MISSING if found is None else found[1]


MISSING = object()


def judge(store, alert, boundary):
    """(fires: True, False or None for no verdict, value, baseline) of an alert at ``boundary``."""
    start, end = rules.closed_window(boundary, alert["window"])
    if alert["kind"] == "data":
        count = _window_value(store, alert, "count", start, end, boundary)
        if count is MISSING:
            return None, None, None  # a data alert waits for its metric
        return rules.data_fires(count), count, None
    value = _window_value(store, alert, alert["operation"], start, end, boundary)
    if value is MISSING:
        return None, None, None
    if alert["kind"] == "value":
        return rules.value_fires(value, alert["condition"], alert["threshold"]), value, None
    shift = rules.compare_shift(alert["compare"])
    baseline = _window_value(store, alert, alert["operation"], start - shift, end - shift,
                             boundary)  # fmt: skip
    baseline = None if baseline is MISSING else baseline
    fires = rules.delta_fires(value, baseline, alert["percent"], alert["direction"])
    return fires, value, baseline


def chart_url(settings, metric):
    """The chart page on a metric."""
    return f"{settings['PUBLIC_URL']}/?metric={quote(metric, safe='')}"


def evaluate_all(store, settings, boundary):
    """Judge every alert not yet judged at ``boundary``: (judged, fired, resolved)."""
    judged = fired = resolved = 0
    for alert_id in store.alert_ids():
        alert = store.alert(alert_id)
        if alert is None or (alert["evaluated_at"] and alert["evaluated_at"] >= boundary):
            continue
        try:
            verdict = judge(store, alert, boundary)
        except Exception:  # one alert's failure never stops the others
            log.warning("alert %s: evaluation failed", alert_id, exc_info=True)
            continue
        outcome = store.settle_alert(
            alert_id, functools.partial(_settle, settings, verdict=verdict, boundary=boundary)
        )
        if outcome is None:
            continue  # judged meanwhile by another evaluator
        judged += 1
        fired += outcome == rules.FIRING
        resolved += outcome == rules.OK
    return judged, fired, resolved


def _settle(settings, alert, verdict, boundary):  # alert: read under its row's lock
    """What an evaluation changes, decided under the alert's row lock: (columns, events,
    notices [(notice id, target, body)], the new state if it changed, else "")."""
    if alert["evaluated_at"] and alert["evaluated_at"] >= boundary:
        return None  # judged meanwhile
    fires, value, baseline = verdict
    values = {"evaluated_at": boundary, "last_value": rules.finite_or_none(value),
              "baseline": rules.finite_or_none(baseline)}  # fmt: skip
    if fires is None:
        return values, [], [], ""
    state = rules.FIRING if fires else rules.OK
    changed = state != alert["state"]
    repeat_due = (
        state == rules.FIRING
        and not changed
        and alert["repeat"]
        and alert["notified_at"] is not None
        and boundary >= alert["notified_at"] + timedelta(minutes=alert["repeat"])
    )
    events, notices = [], []
    if changed:
        values.update(state=state, changed_at=boundary)
        events.append({"at": boundary, "kind": "transition", "state": state})
    if changed or repeat_due:
        values["notified_at"] = boundary
        notice_id = uuid.uuid4().hex
        body = rules.notice_body(notice_id, alert, state, value, baseline, isoformat_z(boundary),
                                 chart_url(settings, alert["metric"]))  # fmt: skip
        notices = [(notice_id, target, body) for target in alert["notify"]]
        log.info("alert %s on %s: %s (value %s)", alert["id"], alert["metric"], state, value)
    return values, events, notices, state if changed else ""


def deliver(store, settings, now):
    """Send every notice due at ``now``: (sent, failed attempts)."""
    sent = failed = 0
    for alert_id in store.alerts_with_due_notices(now):
        alert = store.alert(alert_id)
        if alert is None:
            continue
        for notice in store.due_notices(alert_id, now):
            if attempt(store, settings, alert, notice, now):
                sent += 1
            else:
                failed += 1
    return sent, failed


def send(settings, alert, target_text, body):
    """Send one notice body to one target; raise DeliveryError when it was not taken."""
    target = rules.parse_target(target_text)
    if target is None:
        raise DeliveryError("not a target")
    if target.channel == "webhook":
        send_webhook(target.address, body, alert["secret"],
                     settings["ALERTS_ALLOW_PRIVATE_TARGETS"])  # fmt: skip
    else:
        subject, text = rules.notice_text(body)
        send_email(settings["SMTP_URL"], settings["ALERTS_FROM"], target.address, subject, text)


def attempt(store, settings, alert, notice, now):
    """One attempt at a notice, recorded before it is made (its next attempt set) and after
    (sent, or retrying, or failed once the back-off is spent); whether it was delivered."""
    attempts = notice.attempts + 1
    spent = attempts > len(BACKOFF_SECONDS)
    retry_at = now + timedelta(seconds=BACKOFF_SECONDS[min(attempts, len(BACKOFF_SECONDS)) - 1])
    store.notice_attempted(notice.id, {"attempts": attempts, "next_attempt_at": retry_at})
    body = notice.body.encode()
    event = {"at": now, "kind": "notice", "state": json.loads(body)["state"],
             "channel": notice.target.partition(":")[0], "notice_id": notice.notice_id}  # fmt: skip
    try:
        send(settings, alert, notice.target, body)
    except DeliveryError as error:
        outcome = "failed" if spent else "retrying"
        log.warning("alert %s: notice %s to %s %s: %s", alert["id"], notice.notice_id,
                    event["channel"], outcome, error)  # fmt: skip
        values = {"failed_at": now} if spent else {}
        store.notice_attempted(notice.id, values, {**event, "outcome": outcome,
                                                   "detail": str(error)})  # fmt: skip
        return False
    store.notice_attempted(notice.id, {"sent_at": now}, {**event, "outcome": "sent"})
    return True


def send_test(store, settings, alert, now=None):
    """Send a test notice (``"test": true``, the alert's current state and last value) to every
    target of an alert at once, without retries, each outcome recorded as an event; (notice id,
    [{"target", "channel", "outcome", "error"?}])."""
    now = now or utcnow()
    notice_id = uuid.uuid4().hex
    evaluated_at = isoformat_z(alert["evaluated_at"] or now.replace(microsecond=0))
    url = chart_url(settings, alert["metric"])
    body = rules.notice_body(notice_id, alert, alert["state"], alert["value"], alert["baseline"],
                             evaluated_at, url, test=True)  # fmt: skip

    def one(target):
        channel = target.partition(":")[0]
        try:
            send(settings, alert, target, body)
        except DeliveryError as error:
            return {"target": target, "channel": channel, "outcome": "failed", "error": str(error)}
        return {"target": target, "channel": channel, "outcome": "sent"}

    with ThreadPoolExecutor(max_workers=len(alert["notify"])) as pool:
        results = list(pool.map(one, alert["notify"]))
    for result in results:
        event = {"at": now, "kind": "notice", "state": alert["state"],
                 "channel": result["channel"], "outcome": result["outcome"],
                 "notice_id": notice_id, "detail": result.get("error")}  # fmt: skip
        store.record_alert_event(alert["id"], event)
    return notice_id, results
