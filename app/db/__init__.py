"""Storage: the ``Store`` every other layer calls (app/db/store.py) and its engines."""

import os
import threading

from app.db.group_commit import GroupWriter
from app.db.store import Aggregates, Store, create_engine_for
from app.db.transaction import ping, run_in_transaction, run_read
from app.db.writer import storage_options

__all__ = [
    "Aggregates",
    "Database",
    "Store",
    "create_engine_for",
    "get_db",
    "get_store",
    "init_app",
    "ping",
    "run_in_transaction",
    "run_read",
]

EXTENSION = "glowing_fiesta.db"


class Database(Store):
    """The store and this process's group-commit writer."""

    def __init__(self, settings, writer_options=None):
        super().__init__(settings)
        # writer_options: GroupWriter's keyword arguments (linger, sizes, observer).
        self.writer_options = writer_options or {}
        self._writer = None
        self._writer_pid = None
        self._writer_lock = threading.Lock()

    @property
    def is_sqlite(self):
        """True for the embedded SQLite backend."""
        return not self.sql.HAS_PARTITIONS

    def writer(self):
        """This process's GroupWriter, created on first use after any fork."""
        with self._writer_lock:
            if self._writer is None or self._writer_pid != os.getpid():
                self._writer = GroupWriter(self.write, **self.writer_options)
                self._writer_pid = os.getpid()
            return self._writer

    def close_writer(self, timeout=30):
        """Commit what waits in this process's writer and stop it."""
        with self._writer_lock:
            writer = self._writer if self._writer_pid == os.getpid() else None
            self._writer = None
        if writer is not None:
            writer.close(timeout)

    def dispose(self, close=True):
        """Commit what the writer holds (at shutdown), then drop every pooled connection."""
        if close:
            self.close_writer()
        super().dispose(close)


def get_store(app):
    """The app's ``Store``."""
    return app.extensions[EXTENSION]


get_db = get_store


def init_app(app):
    """Create the app's store (the schema comes from ``flask db migrate``)."""
    config = app.config
    keep_rollups, keep_raw, max_metrics = storage_options(config)
    writer_options = {
        "linger_ms": config["WRITER_LINGER_MS"],
        "max_batch": config["WRITER_MAX_BATCH"],
        "queue_limit": config["WRITER_QUEUE_LIMIT"],
        "wait_seconds": config["WRITER_WAIT_SECONDS"],
        "rollups": keep_rollups,
        "keep_raw": keep_raw,
        "max_metrics": max_metrics,
    }
    app.extensions[EXTENSION] = Database(config, writer_options)
