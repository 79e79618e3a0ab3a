"""What tests share besides fixtures: the servers they talk to, keys, what the database holds
(read directly, to check what a user would not see), and the database set-up steps."""

import json
import os

from sqlalchemy import create_engine, select, text

from app.api.auth import create_key
from app.core.timeutil import isoformat_z
from app.db import create_engine_for, get_store
from app.db.migrate import migrate
from app.db.schema import keyed_by_metric, metadata, metric_points, metrics
from tests.harness import recreate_database

MYSQL_SERVER_URL = os.environ.get("TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
REDIS_SERVER_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")

# Every table a test may fill (the schema's record and state tables stay).
TABLES = tuple(
    table.name
    for table in reversed(metadata.sorted_tables)
    if table.name not in ("schema_migrations", "rollup_state", "named_locks")
)


def migrated_database(name):
    """Create ``name`` empty on the MariaDB server and migrate it; its URL."""
    recreate_database(MYSQL_SERVER_URL, name)
    url = f"{MYSQL_SERVER_URL}/{name}"
    engine = create_engine_for(url)
    migrate(engine)
    engine.dispose()
    return url


def clear_mysql(url):
    """Empty the tables between tests (rows only; the schema stays)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        for table in TABLES:
            conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(
            text(
                "UPDATE rollup_state SET complete_from = '1970-01-01', sketches_from = '1970-01-01'"
            )
        )
        conn.execute(  # the migration's default tenant, as it left it
            text(
                "INSERT INTO tenants (id, name, created_at) VALUES (1, 'default', UTC_TIMESTAMP())"
            )
        )
    engine.dispose()


ISSUED_KEYS = []  # every raw key the tests made: none may appear in a server's log


def new_key(app, name="tests", rate_limit=None, scopes="read,write"):
    """Create an API key in the app's database; returns the raw key."""
    raw, _ = create_key(get_store(app), name, rate_limit, scopes)
    ISSUED_KEYS.append(raw)
    return raw


def check_log(server):
    """Every line a server wrote is one JSON object, and no API key appears in any."""
    text = server.errors()
    for line in text.splitlines():
        assert isinstance(json.loads(line), dict), line
    leaked = [key for key in ISSUED_KEYS if key in text or key[3:] in text]
    assert not leaked, "a raw API key reached the log"


def on_clickhouse(app):
    """Whether the app keeps its points in ClickHouse."""
    return get_store(app).points.name == "clickhouse"


def stored_points(app, name):
    """(recorded_at, value) of a metric's stored points, in time order, straight from the DB
    (ClickHouse's, where the app keeps them)."""
    if on_clickhouse(app):
        with get_store(app).write.connect() as conn:
            ids = conn.scalars(select(metrics.c.id).where(metrics.c.name == name)).all()
        return sorted(p for i in ids for p in get_store(app).points.stored_points(i))
    query = (
        select(metric_points.c.recorded_at, metric_points.c.value)
        .join(metrics, metrics.c.id == metric_points.c.metric_id)
        .where(metrics.c.name == name)
        .order_by(metric_points.c.recorded_at, metric_points.c.id)
    )
    with get_store(app).write.connect() as conn:
        return [(row.recorded_at, row.value) for row in conn.execute(query)]


def stored_metric(app, name):
    """(name, type) of the stored metric, or None."""
    with get_store(app).write.connect() as conn:
        row = conn.execute(
            text("SELECT name, type FROM metrics WHERE name = :name"), {"name": name}
        ).first()
        return tuple(row) if row else None


def orphan_rows(app):
    """{table: rows} left of deleted metrics (their row gone, or marked deleted) in every table
    the schema keys by metric id, and in ClickHouse's; {} when nothing is left."""
    found = {}
    with get_store(app).write.connect() as conn:
        for table in keyed_by_metric():
            count = conn.execute(
                text(
                    f"SELECT COUNT(*) FROM {table.name} t LEFT JOIN metrics m "
                    "ON m.id = t.metric_id WHERE m.id IS NULL OR m.deleted_at IS NOT NULL"
                )
            ).scalar()
            if count:
                found[table.name] = count
        live = set(conn.scalars(select(metrics.c.id).where(metrics.c.deleted_at.is_(None))))
    if on_clickhouse(app):
        for table, rows in get_store(app).points.rows_by_metric().items():
            count = sum(n for metric_id, n in rows.items() if metric_id not in live)
            if count:
                found[f"clickhouse.{table}"] = count
    return found


def orphan_points(app):
    """Rows of every table keyed by metric id left of deleted metrics, in all."""
    return sum(orphan_rows(app).values())


def post_hosted_values(client, headers, name, points):
    """Write value points [(naive UTC time, value, host)] (tag ``host``) to metric ``name`` in
    batches of 500, each one wholly accepted."""
    for offset in range(0, len(points), 500):
        items = [
            {"name": name, "type": "value", "value": value, "recorded_at": isoformat_z(moment),
             "tags": {"host": host}}
            for moment, value, host in points[offset : offset + 500]
        ]  # fmt: skip
        response = client.post("/api/metrics/batch", json={"metrics": items}, headers=headers)
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["rejected"] == 0
