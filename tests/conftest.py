"""Fixtures: a throwaway MariaDB database and Redis db per run, apps over both backends.

Services are real; a missing one fails the run (``make services`` starts them).
"""

import os

import pytest
import redis

from app import config, create_app, shutdown
from app.db import get_store
from app.db.migrate import migrate
from app.jobs import drain, runtime
from tests.harness import Gunicorn, RedisServer, drop_abandoned_databases, drop_database
from tests.helpers import (
    MYSQL_SERVER_URL,
    REDIS_SERVER_URL,
    check_log,
    clear_mysql,
    migrated_database,
    new_key,
)


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch):
    """No test sees the developer's configuration variables."""
    for name in config.VARIABLES:
        monkeypatch.delenv(name, raising=False)


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


@pytest.fixture
def api_key(app):
    """A valid raw API key."""
    return new_key(app)


@pytest.fixture
def auth(api_key):
    """Headers that authenticate with ``api_key``."""
    return {"X-API-Key": api_key}


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
