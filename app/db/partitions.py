"""Daily partitions of ``metric_points`` on MySQL/MariaDB (MySQL-only DDL lives here).

Partitions are named ``pYYYYMMDD`` and hold that UTC day; ``p_past`` holds nothing (before
1970-01-02) and ``p_future`` (MAXVALUE) catches the rest. New days are made by splitting
``p_future`` while it is empty, which is instant; once rows land in it a split would copy them
under a table lock, so that is refused and reported (``future_rows``) instead. DDL runs with a
short ``lock_wait_timeout`` and is retried, so inserts never queue long behind a metadata lock.
Dropping a whole expired day is O(1): no row-by-row delete.
"""

import logging
import random
import time
from datetime import date, timedelta

from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from app.db.errors import mysql_code

log = logging.getLogger(__name__)

TABLE = "metric_points"
FUTURE = "p_future"
LOCK = "partitions"  # the named lock every partition change holds
DDL_LOCK_WAIT_SECONDS = 5
DDL_ATTEMPTS = 4

_LIST = text(
    "SELECT partition_name FROM information_schema.partitions "
    "WHERE table_schema = DATABASE() AND table_name = :table AND partition_name IS NOT NULL"
)


def partition_name(day):
    """The name of the partition that holds ``day``."""
    return f"p{day:%Y%m%d}"


def day_of(name):
    """The day a ``pYYYYMMDD`` partition holds."""
    return date(int(name[1:5]), int(name[5:7]), int(name[7:9]))


def existing(conn):
    """Names of the table's partitions."""
    return set(conn.execute(_LIST, {"table": TABLE}).scalars())


def daily(conn):
    """The days that have a partition, oldest first."""
    return sorted(day_of(name) for name in existing(conn) if name[1:].isdigit())


def rows_in(conn, name):
    """How many rows a partition holds (exact)."""
    return conn.execute(text(f"SELECT COUNT(*) FROM {TABLE} PARTITION ({name})")).scalar()


def future_has_rows(conn):
    """True once rows have landed past the last daily partition."""
    query = text(f"SELECT 1 FROM {TABLE} PARTITION ({FUTURE}) LIMIT 1")
    return conn.execute(query).first() is not None


def days_ahead(conn, today):
    """How many days after ``today`` have a partition (negative: even today has none)."""
    days = daily(conn)
    return (days[-1] - today).days if days else -1


def ensure_daily(conn, first_day, last_day, force=False):
    """Create the missing daily partitions after the newest one, up to ``last_day``, by
    splitting the empty ``p_future``; ({"created": [names], "future_rows": bool}). ``force``
    splits it even when rows have landed in it (they are copied, under a table lock)."""
    days = daily(conn)
    start = max(first_day, days[-1] + timedelta(days=1)) if days else first_day
    wanted = [start + timedelta(days=n) for n in range((last_day - start).days + 1)]
    if not wanted:
        return {"created": [], "future_rows": False}
    if future_has_rows(conn) and not force:
        log.error(
            "rows have landed in %s (past the last daily partition): not splitting it under "
            "load; run `flask partitions ensure --force` in a quiet hour",
            FUTURE,
        )
        return {"created": [], "future_rows": True}
    split(conn, wanted)
    log.info("created %d daily partitions %s..%s", len(wanted), wanted[0], wanted[-1])
    return {"created": [partition_name(d) for d in wanted], "future_rows": False}


def split(conn, days):
    """REORGANIZE ``p_future`` into the given days and a new ``p_future``."""
    parts = [
        f"PARTITION {partition_name(d)} VALUES LESS THAN ('{d + timedelta(days=1):%Y-%m-%d}')"
        for d in days
    ]
    parts.append(f"PARTITION {FUTURE} VALUES LESS THAN (MAXVALUE)")
    run_ddl(conn, f"ALTER TABLE {TABLE} REORGANIZE PARTITION {FUTURE} INTO ({', '.join(parts)})")


def drop(conn, names):
    """Drop whole partitions (and every row in them) at once."""
    if names:
        run_ddl(conn, f"ALTER TABLE {TABLE} DROP PARTITION {', '.join(sorted(names))}")


def run_ddl(conn, statement):
    """Run DDL waiting at most a few seconds for the table's metadata lock, retried: writers
    queued behind a waiting ALTER would otherwise stall with it."""
    conn.execute(text(f"SET SESSION lock_wait_timeout = {DDL_LOCK_WAIT_SECONDS}"))
    try:
        for attempt in range(1, DDL_ATTEMPTS + 1):
            try:
                conn.execute(text(statement))
                return
            except OperationalError as exc:
                if mysql_code(exc) != 1205 or attempt == DDL_ATTEMPTS:
                    raise
                log.warning("partition DDL waited too long for its lock; retry %d", attempt)
                time.sleep(random.uniform(0.5, 2.0) * attempt)
    finally:
        conn.execute(text("SET SESSION lock_wait_timeout = DEFAULT"))
