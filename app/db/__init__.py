"""The database engines (one write pool, an optional read pool) and the transaction boundary."""

import logging
import random
import time
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from app.db.aggregate import DecimalSum
from app.db.errors import is_retriable_error
from app.db.metrics import MetricCache

log = logging.getLogger(__name__)

EXTENSION = "glowing_fiesta.db"
TRANSACTION_ATTEMPTS = 4
SQLITE_BUSY_SECONDS = 10


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

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        # Writers take the write lock up front, so two never deadlock upgrading a read lock.
        mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _mysql_engine(url):
    """A MySQL/MariaDB engine: pre-ping, recycle under wait_timeout, UTC, READ COMMITTED."""
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_recycle=1800,
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


def create_engine_for(url):
    """Build the engine for a DATABASE_URL, with the options its dialect needs."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    return _mysql_engine(url)


class Database:
    """One app's database: ``write`` engine, ``read`` for queries (a replica or ``write``),
    and the process's cache of metric names."""

    def __init__(self, url, read_url=None):
        self.url = url
        self.metric_cache = MetricCache()
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

    def dispose(self, close=True):
        """Drop every pooled connection: closed at shutdown, or (``close=False``) merely
        forgotten in a forked child, whose parent still owns them."""
        self.write.dispose(close=close)
        if self.read is not self.write:
            self.read.dispose(close=close)


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


def get_db(app):
    """The app's ``Database``."""
    return app.extensions[EXTENSION]


def init_app(app):
    """Create the app's engines (the schema comes from ``flask db migrate``)."""
    app.extensions[EXTENSION] = Database(
        app.config["DATABASE_URL"], app.config["DATABASE_READ_URL"]
    )
