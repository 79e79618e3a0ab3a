"""Alert storage: the alerts of each tenant, their events and the outbox of their notices.
Functions take a connection and never commit; alerts come back as plain dicts by the API's
field names (``view``), with the secret and bookkeeping under their own keys."""

import json

from sqlalchemy import case, delete, func, select, update

from app.db.schema import alert_events, alert_notices, alerts

# API field → column, where they differ (CONDITION, REPEAT and WINDOW are reserved in MySQL).
COLUMNS = {
    "window": "window_name",
    "condition": "comparison",
    "repeat": "repeat_minutes",
    "compare": "compare_to",
}
EVENTS_SHOWN = 1000


def _columns(values):
    """API fields → column values (lists as JSON text)."""
    row = {}
    for field, value in values.items():
        if field in ("filters", "notify"):
            value = json.dumps(list(value))
        row[COLUMNS.get(field, field)] = value
    return row


def view(row):
    """An alert row as a dict by the API's names (and ``tenant_id``, ``secret``, the last
    evaluation's ``baseline``, ``changed_at`` and ``notified_at``)."""
    alert = {
        "id": row.id,
        "tenant_id": row.tenant_id,
        "metric": row.metric,
        "kind": row.kind,
        "window": row.window_name,
        "operation": row.operation,
        "filters": json.loads(row.filters),
        "notify": json.loads(row.notify),
        "repeat": row.repeat_minutes,
        "condition": row.comparison,
        "threshold": row.threshold,
        "percent": row.percent,
        "direction": row.direction,
        "compare": row.compare_to,
        "state": row.state,
        "value": row.last_value,
        "baseline": row.baseline,
        "evaluated_at": row.evaluated_at,
        "changed_at": row.changed_at,
        "notified_at": row.notified_at,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "secret": row.secret,
    }
    return alert


def insert(conn, tenant_id, values, secret, now):
    """Store a new alert of a tenant (``values`` by the API's names); its id."""
    result = conn.execute(
        alerts.insert().values(
            tenant_id=tenant_id,
            secret=secret,
            state="ok",
            created_at=now,
            updated_at=now,
            **_columns(values),
        )
    )
    return result.inserted_primary_key[0]


def find(conn, alert_id, tenant_id=None, lock=False):
    """The alert (of ``tenant_id``, or any) as a dict, or None; ``lock``: its row's exclusive
    lock for the rest of the transaction."""
    query = select(alerts).where(alerts.c.id == alert_id)
    if tenant_id is not None:
        query = query.where(alerts.c.tenant_id == tenant_id)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return None if row is None else view(row)


def list_for(conn, tenant_id):
    """A tenant's alerts, oldest first."""
    query = select(alerts).where(alerts.c.tenant_id == tenant_id).order_by(alerts.c.id)
    return [view(row) for row in conn.execute(query)]


def all_ids(conn):
    """Every alert's id, of every tenant, in order."""
    return list(conn.scalars(select(alerts.c.id).order_by(alerts.c.id)))


def change(conn, alert_id, values, now):
    """Change some of an alert's fields (by the API's names)."""
    conn.execute(
        update(alerts).where(alerts.c.id == alert_id).values(updated_at=now, **_columns(values))
    )


def set_secret(conn, alert_id, secret, now):
    """Replace an alert's signing secret."""
    conn.execute(
        update(alerts).where(alerts.c.id == alert_id).values(secret=secret, updated_at=now)
    )


def remove(conn, alert_id):
    """Delete an alert with its events and its notices not yet sent."""
    for table, column in (
        (alert_notices, alert_notices.c.alert_id),
        (alert_events, alert_events.c.alert_id),
        (alerts, alerts.c.id),
    ):
        conn.execute(delete(table).where(column == alert_id))


def record(conn, alert_id, values):
    """Store what an evaluation found (columns: state, last_value, baseline, evaluated_at,
    changed_at, notified_at)."""
    conn.execute(update(alerts).where(alerts.c.id == alert_id).values(**values))


def add_event(conn, alert_id, at, kind, state, channel=None, outcome=None, notice_id=None,
              detail=None):  # fmt: skip
    """Record an event of an alert: a ``transition`` or a ``notice``'s outcome on a channel."""
    conn.execute(
        alert_events.insert().values(
            alert_id=alert_id, at=at, type=kind, state=state, channel=channel, outcome=outcome,
            notice_id=notice_id, detail=None if detail is None else detail[:255],
        )
    )  # fmt: skip


def events(conn, alert_id, limit=EVENTS_SHOWN):
    """An alert's latest events, oldest first."""
    query = (
        select(alert_events)
        .where(alert_events.c.alert_id == alert_id)
        .order_by(alert_events.c.id.desc())
        .limit(limit)
    )
    return list(reversed(conn.execute(query).all()))


# -- the outbox


def add_notice(conn, alert_id, notice_id, target, body, now):
    """Queue a notice's body for one target, due now."""
    conn.execute(
        alert_notices.insert().values(
            alert_id=alert_id, notice_id=notice_id, target=target, body=body.decode(),
            attempts=0, next_attempt_at=now, created_at=now,
        )
    )  # fmt: skip


def due_alerts(conn, now):
    """Ids of the alerts with a notice due (not sent, not given up, its next attempt past)."""
    query = (
        select(alert_notices.c.alert_id)
        .where(
            alert_notices.c.sent_at.is_(None),
            alert_notices.c.failed_at.is_(None),
            alert_notices.c.next_attempt_at <= now,
        )
        .group_by(alert_notices.c.alert_id)
        .order_by(alert_notices.c.alert_id)
    )
    return list(conn.scalars(query))


def due_notices(conn, alert_id, now):
    """An alert's notices due now, oldest first."""
    query = (
        select(alert_notices)
        .where(
            alert_notices.c.alert_id == alert_id,
            alert_notices.c.sent_at.is_(None),
            alert_notices.c.failed_at.is_(None),
            alert_notices.c.next_attempt_at <= now,
        )
        .order_by(alert_notices.c.id)
    )
    return conn.execute(query).all()


def notice_tried(conn, row_id, values):
    """Record an attempt at a notice (columns: attempts, next_attempt_at, sent_at,
    failed_at)."""
    if values:
        conn.execute(update(alert_notices).where(alert_notices.c.id == row_id).values(**values))


def pending_notices(conn):
    """How many notices wait to be sent (for tests and the CLI's report)."""
    return conn.execute(
        select(func.count())
        .select_from(alert_notices)
        .where(alert_notices.c.sent_at.is_(None), alert_notices.c.failed_at.is_(None))
    ).scalar()


def notice_row(conn, row_id):
    """A notice's outbox row, or None."""
    return conn.execute(select(alert_notices).where(alert_notices.c.id == row_id)).first()


def figures(conn):
    """{"alerts": {state: count}, "notices": {"pending"|"sent"|"failed": count},
    "last_evaluated_at": the latest evaluation or None}: what /metrics shows."""
    states = dict(conn.execute(select(alerts.c.state, func.count()).group_by(alerts.c.state)).all())
    outcome = case(
        (alert_notices.c.sent_at.isnot(None), "sent"),
        (alert_notices.c.failed_at.isnot(None), "failed"),
        else_="pending",
    )
    notices = dict(conn.execute(select(outcome, func.count()).group_by(outcome)).all())
    last = conn.execute(select(func.max(alerts.c.evaluated_at))).scalar()
    return {"alerts": states, "notices": notices, "last_evaluated_at": last}


HISTORY_DAYS = 90  # alert events, and notices sent or given up, are kept this long


def sweep_history(conn, before, limit):
    """Delete up to ``limit`` alert events from before ``before`` and as many notices sent or
    given up before it; returns how many rows went."""
    events = [row.id for row in conn.execute(
        select(alert_events.c.id).where(alert_events.c.at < before).order_by(alert_events.c.id)
        .limit(limit)
    )]  # fmt: skip
    gone = conn.execute(delete(alert_events).where(alert_events.c.id.in_(events))).rowcount
    finished = func.coalesce(alert_notices.c.sent_at, alert_notices.c.failed_at)
    notices = [row.id for row in conn.execute(
        select(alert_notices.c.id).where(finished < before).order_by(alert_notices.c.id)
        .limit(limit)
    )]  # fmt: skip
    return (
        gone + conn.execute(delete(alert_notices).where(alert_notices.c.id.in_(notices))).rowcount
    )
