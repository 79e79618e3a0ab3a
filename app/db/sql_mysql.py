"""Everything that is MySQL 8.0 / MariaDB 10.11 SQL, in one labelled place (its twin for the
embedded default is ``sql_sqlite.py``; ``dialects.py`` chooses one per engine, once).

Written for both servers: no RETURNING, no MariaDB-only syntax. Times are bound as naive UTC
(MariaDB refuses the ``+00:00`` suffix MySQL 8.0.19+ accepts in a DATETIME literal).
"""

import functools
from contextlib import contextmanager

from sqlalchemy import create_engine, insert, text

from app.db.engine_events import ping_when_idle
from app.db.errors import LockBusy

NAME = "mysql"
PARAM = "%s"
# Rollup totals hold each value's shortest decimal in DECIMAL(65,30); values smaller than
# TINY are summed as doubles in ``residual`` beside it (as the raw query sums them).
EXACT_ALL = False
HAS_PARTITIONS = True
MIGRATIONS = "mysql"
BOOTSTRAP_TIMESTAMP = "DATETIME(6)"
# Rebuilding rollups locks a day's rows first: REPEATABLE READ makes that cover the gaps.
REBUILD_ISOLATION = "REPEATABLE READ"


def create(url):
    """A MySQL/MariaDB engine: ping after idling, recycle under wait_timeout, UTC, READ
    COMMITTED, bounded connect and read times."""
    engine = create_engine(
        url,
        pool_recycle=1800,
        # Every unit of work ends in its own COMMIT or ROLLBACK, so the pool's extra ROLLBACK
        # on check-in would only cost a round trip.
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
    ping_when_idle(engine)
    return engine


def read_engine(engine):
    """Queries share the write pool (a replica comes from DATABASE_READ_URL instead)."""
    return engine


def insert_ignore(table):
    """INSERT that skips rows whose unique key exists. On InnoDB a row another transaction is
    inserting makes this wait for that transaction's end, then skip the row if it committed."""
    return insert(table).prefix_with("IGNORE")


_ROW_LOCKS = {None: "", "share": " LOCK IN SHARE MODE", "update": " FOR UPDATE"}


@functools.lru_cache(maxsize=1024)
def find_metrics(count, lock):
    """SELECT of a tenant's ``count`` metric names; ``lock="share"`` takes a shared lock on
    the rows, so a concurrent deletion waits for the writing transaction instead of racing it;
    ``lock="update"`` an exclusive one (creating series counts them under it)."""
    names = ", ".join([PARAM] * count)
    sql = "SELECT id, name, type, tagged FROM metrics WHERE tenant_id = {} AND name IN ({})"
    return sql.format(PARAM, names) + _ROW_LOCKS[lock]


def _modern(dialect):
    # MySQL 8.0.20+ deprecates VALUES() in ON DUPLICATE KEY UPDATE for a row alias; MariaDB
    # has no row alias.
    return not dialect.is_mariadb and (dialect.server_version_info or (0,)) >= (8, 0, 20)


def count_series_tags(dialect):
    """INSERT of (metric_id, tag_key, tag_value, series_count) that adds to an existing row."""
    insert_sql = (
        "INSERT INTO series_tags (metric_id, tag_key, tag_value, series_count) "
        "VALUES (:metric_id, :tag_key, :tag_value, :series_count)"
    )
    if _modern(dialect):
        return insert_sql + (
            " AS new ON DUPLICATE KEY UPDATE series_count = series_tags.series_count + "
            "new.series_count"
        )
    return insert_sql + (
        " ON DUPLICATE KEY UPDATE series_count = series_count + VALUES(series_count)"
    )


def rollup_upsert(table, columns, dialect):
    """The rollup INSERT that adds to an existing row: ON DUPLICATE KEY UPDATE with VALUES() on
    MariaDB, with a row alias on MySQL 8.0.20+ (where VALUES() is deprecated; PyMySQL sends
    that form row by row, its multi-row rewrite does not match it)."""
    return _upsert_text(table.name, columns, _modern(dialect))


@functools.cache
def _upsert_text(name, columns, alias):
    insert_sql = (
        f"INSERT INTO {name} ({', '.join(columns)}) "
        f"VALUES ({', '.join(':' + column for column in columns)})"
    )
    new, old = ("new.{}", f"{name}.{{}}") if alias else ("VALUES({})", "{}")
    clause = " AS new ON DUPLICATE KEY UPDATE " if alias else " ON DUPLICATE KEY UPDATE "
    updates = [
        f"n = {old.format('n')} + {new.format('n')}",
        f"total = {old.format('total')} + {new.format('total')}",
        f"residual = {old.format('residual')} + {new.format('residual')}",
        f"vmin = LEAST({old.format('vmin')}, {new.format('vmin')})",
        f"vmax = GREATEST({old.format('vmax')}, {new.format('vmax')})",
        # Appended, not merged (MySQL cannot add two sketches): the row's frames are merged
        # when read, and compacted by the writer now and then (app/db/rollups.py).
        f"sketch = CONCAT(COALESCE({old.format('sketch')}, ''), {new.format('sketch')})",
    ]
    return insert_sql + clause + ", ".join(updates)


# Rows' sketches are appended to by every writer: they gain frames until compacted.
SKETCH_FRAMES_BOUNDED = False


def sketch_update(table, keys, dialect):
    """Set rows' merged sketches (parameters: ``keys`` and sketch) in one statement: an INSERT
    whose every row is a duplicate — the rollup upsert before made them all — since PyMySQL
    sends an UPDATE row by row but rewrites a plain INSERT into one multi-row statement. (The
    other columns' defaults, from migration 011, are what strict mode wants of an insert.)"""
    return _sketch_text(table.name, keys, _modern(dialect))


@functools.cache
def _sketch_text(name, keys, alias):
    columns = (*keys, "sketch")
    insert_sql = (
        f"INSERT INTO {name} ({', '.join(columns)}) "
        f"VALUES ({', '.join(':' + column for column in columns)})"
    )
    if alias:
        return insert_sql + " AS new ON DUPLICATE KEY UPDATE sketch = new.sketch"
    return insert_sql + " ON DUPLICATE KEY UPDATE sketch = VALUES(sketch)"


def delete_oldest(table, key_column, time_column, has_before):
    """DELETE of up to :chunk rows with ``key_column = :key`` (and ``time_column < :before``),
    oldest first: MySQL forbids a subquery on the table a DELETE deletes from, and DELETE …
    ORDER BY … LIMIT walks the same primary-key range."""
    where = f"{key_column} = :key" + (f" AND {time_column} < :before" if has_before else "")
    return text(f"DELETE FROM {table.name} WHERE {where} ORDER BY {time_column} LIMIT :chunk")


def delete_some(table, key_column):
    """DELETE of up to :chunk rows with ``key_column = :key``, in any order."""
    return text(f"DELETE FROM {table.name} WHERE {key_column} = :key LIMIT :chunk")


# The bucketed GROUP BY (app/db/aggregate.py): TIMESTAMPDIFF from the epoch reads the DATETIME
# as UTC whatever the session's zone; DIV, not FLOOR(x / w): "/" is DECIMAL division rounded
# to div_precision_increment.
SLOT = "TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', {column}) DIV {window}"
SUM_TOTAL = "SUM({column})"


def raw_sums(tiny):
    """(exact total, residual) expressions over raw values: a DECIMAL(65,30) sum of each
    value, and a double sum of those smaller than ``tiny`` (past DECIMAL's places)."""
    return (
        f"SUM(CASE WHEN ABS(value) < {tiny!r} THEN 0 ELSE CAST(value AS DECIMAL(65,30)) END)",
        f"SUM(CASE WHEN ABS(value) < {tiny!r} THEN value ELSE 0 END)",
    )


def bind_moment(moment):
    """A naive UTC datetime as the driver binds it."""
    return moment


_QUALIFIED = text("SELECT CONCAT(DATABASE(), ':', :name)")
_GET_LOCK = text("SELECT GET_LOCK(:name, :wait)")
_RELEASE_LOCK = text("SELECT RELEASE_LOCK(:name)")


@contextmanager
def named_lock(engine, name, wait_seconds, lease_seconds):
    """GET_LOCK held on a connection for the block (the server frees it if the process dies);
    the name carries the database's, since the server's lock names are global. Raises
    LockBusy when it is not free within ``wait_seconds`` (``lease_seconds`` is SQLite's)."""
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
def migration_transaction(engine, lock_name):
    """Migrations under a named lock (DDL commits implicitly on MySQL: the lock is what keeps
    two migrators apart), in one transaction for the bookkeeping."""
    with named_lock(engine, lock_name, 60, 0), engine.begin() as conn:
        yield conn
