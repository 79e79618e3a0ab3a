"""Everything that is SQLite SQL — the embedded default — in one labelled place (its twin is
``sql_mysql.py``; ``dialects.py`` chooses one per engine, once).

SQLite has no exact decimal type: sums use ``decimal_sum`` / ``decimal_add``, registered on
every connection (app/db/decimals.py), over decimal text. Its one writer is serialised by
BEGIN IMMEDIATE; reads begin DEFERRED and never take the write lock.
"""

import functools
import sqlite3
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine, delete, event, insert, select, text
from sqlalchemy.engine import make_url

from app.core.sketch import merge_encoded
from app.core.timeutil import utcnow
from app.db.decimals import DecimalSum, decimal_add
from app.db.errors import LockBusy
from app.db.schema import named_locks

NAME = "sqlite"
PARAM = "?"
EXACT_ALL = True  # rollup totals are decimal text: every value is summed exactly
HAS_PARTITIONS = False
MIGRATIONS = "sqlite"
BOOTSTRAP_TIMESTAMP = "DATETIME"
REBUILD_ISOLATION = None  # one writer at a time: the rows' locks need no gap locking
# How long a writer waits for the lock before "database is locked" (→ 503), well inside
# gunicorn's 30 s graceful timeout.
BUSY_SECONDS = 10


def create(url):
    """A SQLite engine tuned for many threads: WAL, FULL sync, busy timeout, BEGIN IMMEDIATE,
    and the exact decimal functions."""
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"timeout": BUSY_SECONDS, "check_same_thread": False},
        pool_size=8,
        max_overflow=8,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is deferred and late).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()
        dbapi_connection.create_aggregate("decimal_sum", 1, DecimalSum)
        dbapi_connection.create_function("decimal_add", 2, decimal_add, deterministic=True)
        dbapi_connection.create_function("sketch_add", 2, sketch_add, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        # Writers take the write lock up front, so two never deadlock upgrading a read lock.
        mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _switch_to_wal(cursor, attempts=100, pause=0.05):
    """PRAGMA journal_mode=WAL, again while another process holds the new file's lock: the
    switch takes an exclusive lock without waiting (no busy timeout), so two processes opening
    a fresh database at once (`make run &` and `make api-key`) may find it taken."""
    for attempt in range(attempts):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(pause)


def read_engine(engine):
    """Queries begin DEFERRED: they never take (or wait for) the write lock."""
    return engine.execution_options(sqlite_begin="DEFERRED")


def insert_ignore(table):
    """INSERT that skips rows whose unique key exists."""
    return insert(table).prefix_with("OR IGNORE")


@functools.lru_cache(maxsize=1024)
def find_metrics(count, lock):
    """SELECT of a tenant's ``count`` metric names (SQLite's write lock covers ``lock``)."""
    names = ", ".join([PARAM] * count)
    sql = "SELECT id, name, type, tagged FROM metrics WHERE tenant_id = {} AND name IN ({})"
    return sql.format(PARAM, names)


def rollup_upsert(table, columns, dialect):
    """The rollup INSERT that adds to an existing row: ON CONFLICT, adding decimal texts."""
    keys = tuple(column.name for column in table.primary_key)
    return _upsert_text(table.name, columns, keys)


@functools.cache
def _upsert_text(name, columns, keys):
    insert_sql = (
        f"INSERT INTO {name} ({', '.join(columns)}) "
        f"VALUES ({', '.join(':' + column for column in columns)})"
    )
    updates = [
        "n = n + excluded.n",
        "total = decimal_add(total, excluded.total)",
        "residual = residual + excluded.residual",
        "vmin = min(vmin, excluded.vmin)",
        "vmax = max(vmax, excluded.vmax)",
        "sketch = sketch_add(sketch, excluded.sketch)",
    ]
    conflict = f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET "
    return insert_sql + conflict + ", ".join(updates)


# One writer at a time: merging a row's sketch as it is written costs no lock, and keeps every
# stored sketch one frame.
SKETCH_FRAMES_BOUNDED = True


def sketch_add(stored, added):
    """SQL ``sketch_add(a, b)``: the merge of two stored sketches, either NULL (none)."""
    if stored is None or added is None:
        return added if stored is None else stored
    return merge_encoded(stored, added)


def sketch_update(table, keys, dialect):
    """Set rows' merged sketches (parameters: ``keys`` and sketch)."""
    where = " AND ".join(f"{key} = :{key}" for key in keys)
    return f"UPDATE {table.name} SET sketch = :sketch WHERE {where}"


def count_series_tags(dialect):
    """INSERT of (metric_id, tag_key, tag_value, series_count) that adds to an existing row."""
    return (
        "INSERT INTO series_tags (metric_id, tag_key, tag_value, series_count) "
        "VALUES (:metric_id, :tag_key, :tag_value, :series_count) "
        "ON CONFLICT (metric_id, tag_key, tag_value) "
        "DO UPDATE SET series_count = series_count + excluded.series_count"
    )


def delete_oldest(table, key_column, time_column, has_before):
    """DELETE of up to :chunk rows with ``key_column = :key`` (and ``time_column < :before``),
    oldest first, on the table's (key, time) index."""
    where = f"{key_column} = :key" + (f" AND {time_column} < :before" if has_before else "")
    oldest = f"SELECT rowid FROM {table.name} WHERE {where} ORDER BY {time_column} LIMIT :chunk"
    return text(f"DELETE FROM {table.name} WHERE rowid IN ({oldest})")


def delete_some(table, key_column):
    """DELETE of up to :chunk rows with ``key_column = :key``, in any order."""
    some = f"SELECT rowid FROM {table.name} WHERE {key_column} = :key LIMIT :chunk"
    return text(f"DELETE FROM {table.name} WHERE rowid IN ({some})")


# The bucketed GROUP BY (app/db/aggregate.py): SQLite's date functions round to milliseconds
# (…59.9999 would become the next second), so the stored text is cut to whole seconds first;
# integer "/" truncates.
SLOT = "CAST(strftime('%s', substr({column}, 1, 19)) AS INTEGER) / {window}"
SUM_TOTAL = "decimal_sum({column})"


def raw_sums(tiny):
    """(exact total, residual) expressions over raw values: every value exactly."""
    return "decimal_sum(value)", "0.0"


def bind_moment(moment):
    """SQLite compares the stored text: a time bound as the same "YYYY-MM-DD HH:MM:SS.ffffff"."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


@contextmanager
def named_lock(engine, name, wait_seconds, lease_seconds):
    """A row in ``named_locks`` leased for ``lease_seconds`` (a dead holder's lease lapses);
    never waits: LockBusy when someone holds it."""
    owner = uuid.uuid4().hex
    with engine.begin() as conn:  # BEGIN IMMEDIATE: one claimant at a time
        now = utcnow()
        row = conn.execute(select(named_locks).where(named_locks.c.name == name)).first()
        if row is not None and row.expires_at > now:
            raise LockBusy(name)
        conn.execute(delete(named_locks).where(named_locks.c.name == name))
        expires = now + timedelta(seconds=lease_seconds)
        conn.execute(named_locks.insert().values(name=name, owner=owner, expires_at=expires))
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(
                delete(named_locks).where(named_locks.c.name == name, named_locks.c.owner == owner)
            )


@contextmanager
def migration_transaction(engine, lock_name):
    """Migrations in one transaction: SQLite's DDL is transactional and BEGIN IMMEDIATE
    serialises concurrent migrators (the lock table may not exist yet)."""
    with engine.begin() as conn:
        yield conn
