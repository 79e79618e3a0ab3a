"""The database engines (one write pool, an optional read pool) and the transaction boundary."""

import os
import threading
import time
from pathlib import Path

from cachetools import TTLCache
from sqlalchemy import create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError

from app.db import rollups
from app.db.aggregate import DecimalSum, decimal_add
from app.db.group_commit import GroupWriter
from app.db.transaction import ping, run_in_transaction, run_read
from app.db.writer import storage_options

__all__ = ["Database", "get_db", "init_app", "ping", "run_in_transaction", "run_read"]

EXTENSION = "glowing_fiesta.db"
SQLITE_BUSY_SECONDS = 10
PING_AFTER_IDLE_SECONDS = 2
WATERMARK_CACHE_SECONDS = 5
METRIC_CACHE_SECONDS = 4


def _sqlite_engine(url):
    """A SQLite engine tuned for many threads: WAL, FULL sync, busy timeout, BEGIN IMMEDIATE."""
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        # The busy timeout: how long a writer waits for the lock before "database is locked"
        # (→ 503). Well inside gunicorn's 30 s graceful timeout.
        connect_args={"timeout": SQLITE_BUSY_SECONDS, "check_same_thread": False},
        pool_size=8,
        max_overflow=8,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is deferred and late).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()
        dbapi_connection.create_aggregate("decimal_sum", 1, DecimalSum)
        dbapi_connection.create_function("decimal_add", 2, decimal_add, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        # Writers take the write lock up front, so two never deadlock upgrading a read lock.
        mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _ping_when_idle(engine):
    """Check a pooled connection before use only if it sat idle: under load a ping per
    checkout is a round trip per transaction, and a connection used a moment ago is alive.
    A dead one is replaced (DisconnectionError makes the pool connect afresh)."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection, record, proxy):
        idle_since = record.info.get("idle_since")
        if idle_since is not None and time.monotonic() - idle_since > PING_AFTER_IDLE_SECONDS:
            try:
                dbapi_connection.ping(reconnect=False)
            except Exception as exc:
                raise DisconnectionError(f"stale pooled connection: {exc}") from exc


def _mysql_engine(url):
    """A MySQL/MariaDB engine: ping after idling, recycle under wait_timeout, UTC, READ
    COMMITTED."""
    engine = create_engine(
        url,
        pool_recycle=1800,
        # Every unit of work ends in its own COMMIT or ROLLBACK (run_in_transaction, run_read),
        # so the pool's extra ROLLBACK on check-in would only cost a round trip.
        pool_reset_on_return=None,
        pool_size=10,
        max_overflow=10,
        pool_timeout=10,
        # READ COMMITTED: a re-read after INSERT IGNORE sees the row another server committed.
        isolation_level="READ COMMITTED",
        connect_args={
            "charset": "utf8mb4",
            "init_command": "SET time_zone = '+00:00'",
            "connect_timeout": 5,
            "read_timeout": 60,
            "write_timeout": 60,
        },
    )
    _ping_when_idle(engine)
    return engine


def create_engine_for(url):
    """Build the engine for a DATABASE_URL, with the options its dialect needs."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    return _mysql_engine(url)


class Database:
    """One app's database: ``write`` engine, ``read`` for queries (a replica or ``write``),
    and this process's group-commit writer."""

    def __init__(self, url, read_url=None, writer_options=None):
        # writer_options: GroupWriter's keyword arguments (linger, sizes, observer).
        self.url = url
        self.writer_options = writer_options or {}
        self._writer = None
        self._writer_pid = None
        self._writer_lock = threading.Lock()
        self._watermarks = TTLCache(maxsize=1, ttl=WATERMARK_CACHE_SECONDS)
        # name → Metric for queries (writes always read the row under a lock); a deleted
        # metric's name is forgotten within these few seconds.
        self._known_metrics = TTLCache(maxsize=100_000, ttl=METRIC_CACHE_SECONDS)
        self.write = create_engine_for(url)
        if read_url:
            self.read = create_engine_for(read_url)
        elif self.is_sqlite:
            self.read = self.write.execution_options(sqlite_begin="DEFERRED")
        else:
            self.read = self.write

    @property
    def is_sqlite(self):
        """True for the embedded SQLite backend."""
        return self.write.dialect.name == "sqlite"

    def rollup_watermarks(self):
        """{tier: complete from} of the rollups, read at most every few seconds."""
        with self._writer_lock:
            cached = self._watermarks.get("all")
        if cached is None:
            cached = run_read(self.read, rollups.complete_from)
            with self._writer_lock:
                self._watermarks["all"] = cached
        return cached

    def known_metrics(self, names):
        """{name: Metric} of the names this process looked up a moment ago."""
        with self._writer_lock:
            return {n: self._known_metrics[n] for n in names if n in self._known_metrics}

    def remember_metrics(self, found):
        """Keep Metrics a query found, for a few seconds from when they were first found: a
        name in use is never kept longer, so a deleted one is forgotten within that time."""
        with self._writer_lock:
            for name, metric in found.items():
                if name not in self._known_metrics:
                    self._known_metrics[name] = metric

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
        """Drop every pooled connection: closed at shutdown, or (``close=False``) merely
        forgotten in a forked child, whose parent still owns them."""
        if close:
            self.close_writer()
        self.write.dispose(close=close)
        if self.read is not self.write:
            self.read.dispose(close=close)


def get_db(app):
    """The app's ``Database``."""
    return app.extensions[EXTENSION]


def init_app(app):
    """Create the app's engines (the schema comes from ``flask db migrate``)."""
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
    app.extensions[EXTENSION] = Database(
        config["DATABASE_URL"], config["DATABASE_READ_URL"], writer_options
    )
