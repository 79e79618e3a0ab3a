"""Named locks across processes and servers: migrations, partition DDL and maintenance jobs.

MySQL/MariaDB hold ``GET_LOCK`` on a connection for the block; SQLite leases a row in
``named_locks`` (each dialect's module has its form).
"""

from app.db import dialects
from app.db.errors import LockBusy

__all__ = ["LockBusy", "named_lock"]

DEFAULT_LEASE_SECONDS = 3600


def named_lock(engine, name, wait_seconds=0, lease_seconds=DEFAULT_LEASE_SECONDS):
    """Hold the lock ``name`` for the block; raise LockBusy if it is not free within
    ``wait_seconds`` (MySQL; SQLite never waits)."""
    return dialects.of(engine).named_lock(engine, name, wait_seconds, lease_seconds)
