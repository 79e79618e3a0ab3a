"""Daily partitions of ``metric_points`` on MySQL/MariaDB (MySQL-only DDL lives here).

Partitions are named ``pYYYYMMDD`` and hold that UTC day; ``p_future`` (MAXVALUE) catches the
rest and is split when new days are added, which is cheap while it is empty.
"""

import logging
from datetime import date, timedelta

from sqlalchemy import text

log = logging.getLogger(__name__)

TABLE = "metric_points"

_LIST = text(
    "SELECT partition_name FROM information_schema.partitions "
    "WHERE table_schema = DATABASE() AND table_name = :table AND partition_name IS NOT NULL"
)


def partition_name(day):
    """The name of the partition that holds ``day``."""
    return f"p{day:%Y%m%d}"


def existing(conn):
    """Names of the table's partitions."""
    return set(conn.execute(_LIST, {"table": TABLE}).scalars())


def ensure_daily(conn, first_day, last_day):
    """Create the missing daily partitions after the newest one, up to ``last_day``."""
    names = existing(conn)
    days = sorted(n for n in names if n[1:].isdigit())
    start = first_day
    if days:
        newest = days[-1]
        start = max(first_day, day_of(newest) + timedelta(days=1))
    wanted = []
    day = start
    while day <= last_day:
        wanted.append(day)
        day += timedelta(days=1)
    if not wanted:
        return []
    parts = [
        f"PARTITION {partition_name(d)} VALUES LESS THAN ('{d + timedelta(days=1):%Y-%m-%d}')"
        for d in wanted
    ]
    parts.append("PARTITION p_future VALUES LESS THAN (MAXVALUE)")
    conn.execute(
        text(f"ALTER TABLE {TABLE} REORGANIZE PARTITION p_future INTO ({', '.join(parts)})")
    )
    log.info("created %d daily partitions %s..%s", len(wanted), wanted[0], wanted[-1])
    return [partition_name(d) for d in wanted]


def day_of(name):
    """The day a ``pYYYYMMDD`` partition holds."""
    return date(int(name[1:5]), int(name[5:7]), int(name[7:9]))
