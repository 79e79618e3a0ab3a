"""Idempotency receipts: which requests (and queue jobs) were applied, and what they answered.

A receipt row is written in the same transaction as the points it covers, so after a lost
answer — a COMMIT whose reply never arrived — a retry finds the row exactly when the points
landed. Claiming uses INSERT-or-ignore, never a unique-key error: a transaction that meets a
row another one is still writing waits for that commit (InnoDB's duplicate-key lock) and then
reads its answer, and no claim can fail the neighbours grouped in the same transaction.
Functions take a connection and never commit.
"""

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, delete, select, tuple_, update

from app.core.constants import IDEMPOTENCY_TTL_SECONDS
from app.db import dialects
from app.db.schema import idempotency_keys

TTL = timedelta(seconds=IDEMPOTENCY_TTL_SECONDS)
JOB_SCOPE = 0  # queue batches' receipts; API key ids start at 1
SUBJECT_SCOPES = 2**31  # a JWT subject's receipts: this + its number; API key ids stay below


@dataclass(frozen=True)
class Receipt:
    """An Idempotency-Key as applied: its scope (the API key's id, or a JWT subject's
    ``subject_scope``), the key, the request's hash."""

    scope: int
    key: str
    request_hash: str
    remember_answer: bool = True  # a queue job's receipt only marks it applied

    @property
    def ident(self):
        """The row's primary key."""
        return (self.scope, self.key)


def subject_scope(subject_id):
    """The receipt scope of a JWT subject (jwt_subjects.id): never an API key's id."""
    return SUBJECT_SCOPES + subject_id


@dataclass(frozen=True)
class Recorded:
    """What the first request with a receipt's key left: its hash and its answer; with points
    in ClickHouse, ``pending`` is the token of its points while they are not known to have
    landed (None once they have), and ``created_at`` when it was claimed."""

    request_hash: str
    status: int | None
    body: str | None
    pending: str | None = None
    created_at: object = None


def _recorded(row):
    """The Recorded of a receipt row: pending while it holds an answer and still a claim
    (a relational write clears the claim with its answer, in one transaction)."""
    pending = row.claim if row.status is not None else None
    return Recorded(row.request_hash, row.status, row.body, pending, row.created_at)


def job_receipt(job_id):
    """The receipt that marked a job of the previous queue design as applied."""
    return Receipt(JOB_SCOPE, f"job:{job_id}", "", remember_answer=False)


def batch_receipt(name):
    """The receipt of one queue batch (``name``: its queue and token), with the batch's
    outcome as its answer: a drain that finds it has nothing to write, and knows what was."""
    return Receipt(JOB_SCOPE, f"batch:{name}", "")


def claim(conn, receipts, now, token=None):
    """Claim each receipt for this transaction (``token``: the claim's, default a new one):
    {ident: None} for the ones now ours, or the Recorded row of an earlier, unexpired request.
    ``receipts`` must have distinct idents."""
    if not receipts:
        return {}
    token = token or uuid.uuid4().hex
    rows = [
        {
            "scope_id": r.scope,
            "idem_key": r.key,
            "request_hash": r.request_hash,
            "claim": token,
            "created_at": now,
        }
        for r in sorted(receipts, key=lambda r: r.ident)  # one lock order everywhere
    ]
    conn.execute(dialects.of(conn).insert_ignore(idempotency_keys), rows)
    by_ident = {r.ident: r for r in receipts}
    found = conn.execute(
        select(idempotency_keys).where(
            tuple_(idempotency_keys.c.scope_id, idempotency_keys.c.idem_key).in_(list(by_ident))
        )
    )
    claimed = {}
    for row in found:
        ident = (row.scope_id, row.idem_key)
        if row.claim == token:
            claimed[ident] = None
        elif row.created_at < now - TTL:
            _take_over(conn, by_ident[ident], token, now)
            claimed[ident] = None
        else:
            claimed[ident] = _recorded(row)
    return claimed


def find(conn, receipt, now):
    """The unexpired Recorded row for a receipt's key, or None."""
    row = conn.execute(
        select(idempotency_keys).where(
            idempotency_keys.c.scope_id == receipt.scope,
            idempotency_keys.c.idem_key == receipt.key,
            idempotency_keys.c.created_at >= now - TTL,
        )
    ).first()
    return None if row is None else _recorded(row)


def _take_over(conn, receipt, token, now):
    """Reuse an expired row for a new request with the same key."""
    conn.execute(
        update(idempotency_keys)
        .where(
            idempotency_keys.c.scope_id == receipt.scope,
            idempotency_keys.c.idem_key == receipt.key,
        )
        .values(
            request_hash=receipt.request_hash, claim=token, status=None, body=None, created_at=now
        )
    )


def record_answers(conn, answered, pending=None):
    """Store each claimed receipt's answer: ``[(Receipt, status, body_text)]``; ``pending``:
    the token of points not written yet (ClickHouse), kept as the claim until ``confirm``."""
    if not answered:
        return
    statement = (
        update(idempotency_keys)
        .where(
            idempotency_keys.c.scope_id == bindparam("r_scope"),
            idempotency_keys.c.idem_key == bindparam("r_key"),
        )
        .values(status=bindparam("r_status"), body=bindparam("r_body"), claim=pending)
    )
    conn.execute(
        statement,
        [
            {"r_scope": r.scope, "r_key": r.key, "r_status": status, "r_body": body}
            for r, status, body in answered
        ],
    )


def _ident_is(receipt):
    return (idempotency_keys.c.scope_id == receipt.scope) & (
        idempotency_keys.c.idem_key == receipt.key
    )


def confirm(conn, receipts, token):
    """The points of ``token`` have landed: these receipts (still pending with it) are done."""
    for receipt in sorted(receipts, key=lambda r: r.ident):
        conn.execute(
            update(idempotency_keys)
            .where(_ident_is(receipt), idempotency_keys.c.claim == token)
            .values(claim=None)
        )


def withdraw(conn, token):
    """Delete the receipts pending with ``token``, whose points were never sent."""
    conn.execute(
        delete(idempotency_keys).where(
            idempotency_keys.c.claim == token, idempotency_keys.c.status.is_not(None)
        )
    )


def take_over_pending(conn, receipt, token, new_token, now):
    """Claim a pending receipt whose points (``token``) never landed, for a retry that writes
    them again under ``new_token``; False when another retry took it first."""
    taken = conn.execute(
        update(idempotency_keys)
        .where(_ident_is(receipt), idempotency_keys.c.claim == token)
        .values(claim=new_token, status=None, body=None, created_at=now)
    )
    return taken.rowcount == 1


def sweep(conn, before, limit):
    """Delete up to ``limit`` receipts created before ``before``; returns how many went."""
    oldest = (
        select(idempotency_keys.c.scope_id, idempotency_keys.c.idem_key)
        .where(idempotency_keys.c.created_at < before)
        .order_by(idempotency_keys.c.created_at)
        .limit(limit)
    )
    idents = [tuple(row) for row in conn.execute(oldest)]
    if not idents:
        return 0
    key = tuple_(idempotency_keys.c.scope_id, idempotency_keys.c.idem_key)
    return conn.execute(delete(idempotency_keys).where(key.in_(idents))).rowcount
