"""Fixtures: a throwaway MariaDB database and Redis db per run, apps over both backends.

Services are real; a missing one fails the run (``make services`` starts them).
"""

import json
import os

import pytest
import redis
from sqlalchemy import create_engine, select, text

from app import config, create_app, shutdown
from app.api.auth import create_key
from app.db import create_engine_for, get_store
from app.db.migrate import migrate
from app.db.schema import keyed_by_metric, metadata, metric_points, metrics
from app.jobs import drain, runtime
from scripts.harness import (
    ROOT,
    Gunicorn,
    RedisServer,
    drop_abandoned_databases,
    drop_database,
    recreate_database,
)

MYSQL_SERVER_URL = os.environ.get("TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
REDIS_SERVER_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
PROJECT_ROOT = ROOT
# Every table a test may fill (the schema's record and state tables stay).
TABLES = tuple(
    table.name
    for table in reversed(metadata.sorted_tables)
    if table.name not in ("schema_migrations", "rollup_state", "named_locks")
)


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch):
    """No test sees the developer's configuration variables."""
    for name in config.VARIABLES:
        monkeypatch.delenv(name, raising=False)


def migrated_database(name):
    """Create ``name`` empty on the MariaDB server and migrate it; its URL."""
    recreate_database(MYSQL_SERVER_URL, name)
    url = f"{MYSQL_SERVER_URL}/{name}"
    engine = create_engine_for(url)
    migrate(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def mysql_url():
    """A database of this run's own on the MariaDB server, migrated once, dropped at the end."""
    try:
        for prefix in ("gf_test_", "gf_test_own_"):  # earlier runs that died before cleaning up
            drop_abandoned_databases(MYSQL_SERVER_URL, prefix)
        url = migrated_database(f"gf_test_{os.getpid()}")
    except Exception as exc:
        pytest.fail(f"MariaDB is unreachable at {MYSQL_SERVER_URL} ({exc}); run `make services`")
    yield url
    drop_database(MYSQL_SERVER_URL, url.rsplit("/", 1)[1])


@pytest.fixture
def fresh_mysql_url(mysql_url):
    """A MariaDB database of this test's own, migrated, dropped afterwards: for tests that
    reshape the partitions."""
    url = migrated_database(f"gf_test_own_{os.getpid()}")
    yield url
    drop_database(MYSQL_SERVER_URL, url.rsplit("/", 1)[1])


def clear_mysql(url):
    """Empty the tables between tests (rows only; the schema stays)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        for table in TABLES:
            conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(text("UPDATE rollup_state SET complete_from = '1970-01-01'"))
    engine.dispose()


@pytest.fixture(scope="session")
def redis_db_url():
    """A Redis db number claimed for this run (SET NX in db 0), flushed before and after."""
    base = redis.Redis.from_url(REDIS_SERVER_URL)
    try:
        base.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is unreachable at {REDIS_SERVER_URL} ({exc}); run `make services`")
    claim = None
    for number in range(1, 16):
        claim = f"glowing-fiesta:test-db:{number}"
        if base.set(claim, os.getpid(), nx=True, ex=3600):
            break
    else:
        pytest.fail("every Redis db 1-15 is claimed by another test run")
    client = redis.Redis.from_url(f"{REDIS_SERVER_URL}/{number}")
    client.flushdb()
    yield f"{REDIS_SERVER_URL}/{number}"
    client.flushdb()
    client.close()
    base.delete(claim)
    base.close()


@pytest.fixture
def redis_url(redis_db_url):
    """The run's Redis db, emptied for this test (key ids repeat across test databases)."""
    client = redis.Redis.from_url(redis_db_url)
    client.flushdb()
    client.close()
    return redis_db_url


@pytest.fixture(params=["sqlite", "mysql"])
def database_url(request, tmp_path):
    """Each storage backend in turn, empty."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'glowing-fiesta.sqlite3'}"
    url = request.getfixturevalue("mysql_url")
    clear_mysql(url)
    return url


@pytest.fixture
def make_app(database_url):
    """Build apps on the test's backend (several stand in for several servers)."""
    apps = []

    def build(**overrides):
        app = create_app({"TESTING": True, "DATABASE_URL": database_url, **overrides})
        apps.append(app)
        if get_store(app).sql.NAME == "sqlite":
            migrate(get_store(app).write)  # the MySQL database is migrated once per run
        return app

    yield build
    for app in apps:
        shutdown(app)


@pytest.fixture
def mysql_app(mysql_url):
    """An app on the run's MariaDB database, emptied: for what only MySQL does."""
    clear_mysql(mysql_url)
    app = create_app({"TESTING": True, "DATABASE_URL": mysql_url})
    yield app
    shutdown(app)


@pytest.fixture
def app(make_app):
    """The app on the test's backend."""
    return make_app()


@pytest.fixture
def client(app):
    """A test client of ``app``."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """A CLI runner of ``app``."""
    return app.test_cli_runner()


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


@pytest.fixture
def api_key(app):
    """A valid raw API key."""
    return new_key(app)


@pytest.fixture
def auth(api_key):
    """Headers that authenticate with ``api_key``."""
    return {"X-API-Key": api_key}


def stored_points(app, name):
    """(recorded_at, value) of a metric's stored points, in time order, straight from the DB."""
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


@pytest.fixture
def serve():
    """Start real gunicorn servers with the given environment; stopped after the test."""
    servers = []

    def start(**env):
        server = Gunicorn(env)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        if server.process is not None and server.process.poll() is None:
            server.stop()
        check_log(server)
        server.cleanup()


def orphan_rows(app):
    """{table: rows} left of deleted metrics (their row gone, or marked deleted) in every table
    the schema keys by metric id; {} when nothing is left."""
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
    return found


def orphan_points(app):
    """Rows of every table keyed by metric id left of deleted metrics, in all."""
    return sum(orphan_rows(app).values())


@pytest.fixture
def durable_redis(tmp_path):
    """A Redis of the test's own that persists every write (appendfsync always)."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


# Queue mode in tests: a dead drainer's batch is taken over after 1 s, not 30.
QUEUE_TEST_SETTINGS = {"INGEST_MODE": "queue", "QUEUE_CLAIM_IDLE_SECONDS": "1"}


@pytest.fixture
def queue_env(database_url, durable_redis, monkeypatch):
    """Queue mode's settings on the test's backend and a durable Redis, also set in this
    process's environment (the RQ jobs run here read their settings from it)."""
    env = {"DATABASE_URL": database_url, "REDIS_URL": durable_redis.url, **QUEUE_TEST_SETTINGS}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(drain, "DRAIN_LINGER_SECONDS", 0)  # drains run here end when empty
    runtime.reset()
    yield env
    runtime.reset()


@pytest.fixture
def queue_app(queue_env):
    """An app in queue mode over ``queue_env``."""
    app = create_app({"TESTING": True})
    if get_store(app).sql.NAME == "sqlite":
        migrate(get_store(app).write)
    yield app
    shutdown(app)
