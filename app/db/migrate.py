"""Apply the numbered SQL files in ``sql/<dialect>/`` once each, recorded in schema_migrations."""

import logging
from datetime import timedelta

from sqlalchemy import select, text

from app.config import PROJECT_ROOT
from app.core.timeutil import utcnow
from app.db import dialects, partitions
from app.db.locks import LockBusy, named_lock
from app.db.schema import schema_migrations

log = logging.getLogger(__name__)

SQL_DIR = PROJECT_ROOT / "sql"
PARTITION_DAYS_AHEAD = 7
MIGRATION_LOCK = "migrate"

_BOOTSTRAP = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version VARCHAR(64) NOT NULL PRIMARY KEY,
    applied_at {timestamp} NOT NULL
)"""


def split_statements(sql):
    """Split a SQL file into statements on ``;`` at line ends, dropping ``--`` comment lines."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";\n") if part.strip().rstrip(";")]


def migration_files(engine):
    """The dialect's migration files as ``(version, path)``, in order."""
    files = sorted((SQL_DIR / dialects.of(engine).MIGRATIONS).glob("*.sql"))
    return [(path.stem, path) for path in files]


def _apply_pending(conn, files):
    conn.execute(text(_BOOTSTRAP.format(timestamp=dialects.of(conn).BOOTSTRAP_TIMESTAMP)))
    applied = set(conn.scalars(select(schema_migrations.c.version)))
    done = []
    for version, path in files:
        if version in applied:
            continue
        for statement in split_statements(path.read_text()):
            conn.exec_driver_sql(statement.rstrip(";"))
        conn.execute(schema_migrations.insert().values(version=version, applied_at=utcnow()))
        log.info("applied migration %s", version)
        done.append(version)
    return done


def migrate(engine, retention_days=90, today=None, days_ahead=PARTITION_DAYS_AHEAD):
    """Bring the schema up to date; safe to run again and from several processes at once."""
    sql = dialects.of(engine)
    try:
        with sql.migration_transaction(engine, MIGRATION_LOCK) as conn:
            done = _apply_pending(conn, migration_files(engine))
    except LockBusy:
        raise RuntimeError("another migration held the lock for 60 s; try again") from None
    if sql.HAS_PARTITIONS:
        today = today or utcnow().date()  # partitions are UTC days
        with named_lock(engine, partitions.LOCK, wait_seconds=60), engine.connect() as conn:
            partitions.ensure_daily(
                conn,
                first_day=today - timedelta(days=retention_days),
                last_day=today + timedelta(days=days_ahead),
            )
    return done
