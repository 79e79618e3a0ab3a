"""Writes with points in ClickHouse, which shares no transaction with DATABASE_URL: the
relational receipt decides what was applied.

1. One relational transaction, as without ClickHouse: receipts claimed, metrics and series
   resolved, each request's answer decided — and the receipts recorded *pending*: the answer
   with the write's token still in the claim. The point rows are kept in memory.
2. The rows go to ClickHouse in one insert under that token (``insert_deduplication_token``,
   and in the rows' ``batch`` column), on disk when it returns.
3. A second relational transaction marks the receipts done (their claim cleared).

A failure of 1 (a commit whose answer was lost) withdraws the receipts it may have recorded:
its points were never sent. A crash after 1 leaves receipts pending. A retry with the same
Idempotency-Key (or the drain batch's receipt) that finds one asks ClickHouse whether that
token landed: if so the receipt is done and its answer replayed; if not it takes the receipt
over and writes the points again under a token of its own. A receipt pending for less than
LEASE_SECONDS may be a write still under way (2 in flight): the retry waits for it, and past
PENDING_WAIT_SECONDS answers 503. So a retry at any later time (past ClickHouse's
deduplication window, which counts blocks, not hours) never counts a point twice; the token
makes a block sent twice within the window (a client-side retry of step 2) land once.
"""

import logging
import time
import uuid

from app.db import receipts
from app.db.errors import PointsUnavailable
from app.db.transaction import run_in_transaction
from app.db.writer import write_requests as relational_write

log = logging.getLogger(__name__)

# Longer than any insert may take (the HTTP client gives up after SEND_RECEIVE_TIMEOUT).
LEASE_SECONDS = 120
PENDING_WAIT_SECONDS = 5
PENDING_POLL_SECONDS = 0.05


class ReceiptPending(PointsUnavailable):
    """A receipt's points may still be on their way (another write holds it): retry shortly."""


class StagedPoints:
    """The ClickHouse side of one write: the rows kept for after the commit, the token."""

    def __init__(self, engine):
        self.engine = engine
        self.token = uuid.uuid4().hex  # also the receipts' claim: 32 characters
        self.rows = []

    def insert(self, conn, rows, resolved, options):
        """Keep the rows: they go to ClickHouse once the receipts are committed pending."""
        self.rows = rows

    def settle(self, conn, receipt, recorded, now):
        """A receipt found pending: False when its points landed (now marked done; its answer
        stands), True when this write took it over to write them again."""
        if (now - recorded.created_at).total_seconds() < LEASE_SECONDS:
            raise ReceiptPending("an earlier request with this Idempotency-Key is being written")
        if self.engine.landed(recorded.pending):
            receipts.confirm(conn, [receipt], recorded.pending)
            return False
        if not receipts.take_over_pending(conn, receipt, recorded.pending, self.token, now):
            raise ReceiptPending("another retry with this Idempotency-Key is being written")
        return True


def write_requests(store, engine, requests, now, options, known):
    """Apply write requests through the three steps; each request's Answer (or CONFLICT)."""
    deadline = time.monotonic() + PENDING_WAIT_SECONDS
    while True:
        staged = StagedPoints(engine)
        try:
            answers = run_in_transaction(
                store.write, relational_write, requests, now, options, known, staged
            )
            break
        except ReceiptPending:
            if time.monotonic() >= deadline:
                raise
            time.sleep(PENDING_POLL_SECONDS)
        except Exception:
            _withdraw(store, staged.token)
            raise
    if staged.rows:
        engine.insert(staged.rows, staged.token)
        held = [request.receipt for request in requests if request.receipt is not None]
        if held:
            run_in_transaction(store.write, receipts.confirm, held, staged.token)
    return answers


def _withdraw(store, token):
    """Step 1 failed, perhaps after its commit (an answer lost): its points were never sent,
    so its receipts, if they were recorded, are withdrawn for a retry to apply afresh. If this
    fails too, they stay pending and a retry looks at them after LEASE_SECONDS."""
    try:
        run_in_transaction(store.write, receipts.withdraw, token)
    except Exception:  # the write's own error is the one to report
        log.warning("receipts of write %s left pending", token, exc_info=True)


def recorded_answer(store, engine, receipt, now, recorded):
    """A receipt's Recorded for replaying its answer: as it is when done; when pending, done
    first if its points landed, else None (a new write settles it)."""
    if recorded is None or recorded.pending is None:
        return recorded
    if not engine.landed(recorded.pending):
        return None
    run_in_transaction(store.write, receipts.confirm, [receipt], recorded.pending)
    return recorded
