"""Apply ``sql/clickhouse/`` to the POINTS_URL database once each, recorded in its own
``schema_migrations`` (ClickHouse keeps no transactions: every statement is ``IF NOT EXISTS``,
so a run cut short is finished by the next)."""

import logging

from app.config import PROJECT_ROOT
from app.core.sketch import clickhouse_key_sql
from app.core.timeutil import utcnow
from app.db.clickhouse.client import aware, connect
from app.db.migrate import split_statements

log = logging.getLogger(__name__)

SQL_DIR = PROJECT_ROOT / "sql" / "clickhouse"
# The sketch key of a point's value, as app/core/sketch.py computes it (one definition).
PLACEHOLDERS = {"{sketch_key}": clickhouse_key_sql("value")}
_RECORD = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version String,
    applied_at DateTime64(6, 'UTC')
) ENGINE = ReplacingMergeTree ORDER BY version"""


def statements(path):
    """A migration file's statements, the placeholders filled in."""
    text = path.read_text()
    for placeholder, value in PLACEHOLDERS.items():
        text = text.replace(placeholder, value)
    return [statement.rstrip(";") for statement in split_statements(text)]


def migrate(target, clients):
    """Create the database when missing and apply the files not recorded yet; their versions."""
    outside = connect(target, database=False)
    try:
        outside.command(f"CREATE DATABASE IF NOT EXISTS `{target.database}`")
    finally:
        outside.close()
    client = clients.get()
    client.command(_RECORD)
    applied = {row[0] for row in client.query("SELECT version FROM schema_migrations").result_rows}
    done = []
    for path in sorted(SQL_DIR.glob("*.sql")):
        if path.stem in applied:
            continue
        for statement in statements(path):
            client.command(statement)
        client.insert(
            "schema_migrations", [(path.stem, aware(utcnow()))], ["version", "applied_at"]
        )
        log.info("applied ClickHouse migration %s", path.stem)
        done.append(path.stem)
    return done
