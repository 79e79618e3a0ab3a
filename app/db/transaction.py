"""The transaction boundary: every unit of work runs through one of these."""

import logging
import random
import time

from sqlalchemy import text

from app.db.errors import is_retriable_error

log = logging.getLogger(__name__)

TRANSACTION_ATTEMPTS = 4


def run_in_transaction(engine, work, *args):
    """Run ``work(conn, *args)`` in one transaction, retried on deadlock or lock timeout."""
    for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
        try:
            with engine.begin() as conn:
                return work(conn, *args)
        except Exception as exc:
            if attempt == TRANSACTION_ATTEMPTS or not is_retriable_error(exc):
                raise
            delay = 0.02 * 2**attempt * random.uniform(0.5, 1.5)
            log.warning("transaction retry %d after %s", attempt, type(exc.orig).__name__)
            time.sleep(delay)


def run_read(engine, work, *args):
    """Run ``work(conn, *args)`` on a connection that never takes SQLite's write lock."""
    with engine.connect() as conn:
        conn.execution_options(sqlite_begin="DEFERRED")
        return work(conn, *args)


def ping(engine):
    """Raise unless the database answers a trivial query."""
    run_read(engine, lambda conn: conn.execute(text("SELECT 1")))
