"""Named locks across processes and servers: migrations, partition DDL and maintenance jobs.

MySQL/MariaDB: ``GET_LOCK`` on a connection held for the block (the server frees it if the
process dies); the name carries the database's, since the server's lock names are global.
SQLite: a row in ``named_locks`` leased for ``lease_seconds`` (a dead holder's lease lapses).
"""

import uuid
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import delete, select, text

from app.db.schema import named_locks
from app.timeutil import utcnow

DEFAULT_LEASE_SECONDS = 3600
_QUALIFIED = text("SELECT CONCAT(DATABASE(), ':', :name)")
_GET_LOCK = text("SELECT GET_LOCK(:name, :wait)")
_RELEASE_LOCK = text("SELECT RELEASE_LOCK(:name)")


class LockBusy(Exception):
    """Someone else holds the lock."""


@contextmanager
def named_lock(engine, name, wait_seconds=0, lease_seconds=DEFAULT_LEASE_SECONDS):
    """Hold the lock ``name`` for the block; raise LockBusy if it is not free within
    ``wait_seconds`` (MySQL; SQLite never waits)."""
    if engine.dialect.name == "sqlite":
        with _leased(engine, name, lease_seconds):
            yield
        return
    with engine.connect() as conn:
        full_name = conn.execute(_QUALIFIED, {"name": name}).scalar()[:64]
        if conn.execute(_GET_LOCK, {"name": full_name, "wait": wait_seconds}).scalar() != 1:
            raise LockBusy(name)
        try:
            yield
        finally:
            conn.execute(_RELEASE_LOCK, {"name": full_name})
            conn.commit()


@contextmanager
def _leased(engine, name, lease_seconds):
    owner = uuid.uuid4().hex
    with engine.begin() as conn:  # BEGIN IMMEDIATE: one claimant at a time
        now = utcnow()
        row = conn.execute(select(named_locks).where(named_locks.c.name == name)).first()
        if row is not None and row.expires_at > now:
            raise LockBusy(name)
        conn.execute(delete(named_locks).where(named_locks.c.name == name))
        conn.execute(
            named_locks.insert().values(
                name=name, owner=owner, expires_at=now + timedelta(seconds=lease_seconds)
            )
        )
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(
                delete(named_locks).where(named_locks.c.name == name, named_locks.c.owner == owner)
            )
