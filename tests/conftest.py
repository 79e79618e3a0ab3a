"""Fixtures: a throwaway MariaDB database and Redis db per run, apps over both backends.

Services are real; a missing one fails the run (``make services`` starts them). The tests of
points (modules marked ``points``) also run with points in ClickHouse's in-process engine
(``clickhouse``: relational data on SQLite; ``mysql-clickhouse``: on MariaDB, for modules
marked ``points_mysql``): one engine directory for the run, a database per test.
"""

import itertools
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


BACKENDS = ["sqlite", "mysql", "clickhouse", "mysql-clickhouse"]
# Which modules run on the ClickHouse backends (the marker) and what they must not use: a
# server in another process (chdb opens its directory in one process) or queue mode.
POINTS_BACKENDS = {"clickhouse": "points", "mysql-clickhouse": "points_mysql"}
OTHER_PROCESSES = {"serve", "queue_env", "queue_app", "durable_redis", "mysql_app"}


def pytest_collection_modifyitems(config, items):
    """Keep the ClickHouse backends' runs of the tests marked for them only."""
    kept, dropped = [], []
    for item in items:
        params = item.callspec.params.values() if hasattr(item, "callspec") else ()
        backend = next((p for p in params if isinstance(p, str) and p in POINTS_BACKENDS), None)
        marker = POINTS_BACKENDS.get(backend)
        if marker and (
            item.get_closest_marker(marker) is None
            or item.get_closest_marker("not_on_clickhouse") is not None
            or OTHER_PROCESSES & set(item.fixturenames)
        ):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Each storage backend in turn: where relational data lives, and points (with
    ``clickhouse`` in its name: in ClickHouse)."""
    return request.param


@pytest.fixture
def database_url(backend, request, tmp_path):
    """The test's relational database, empty."""
    if not backend.startswith("mysql"):
        return f"sqlite:///{tmp_path / 'glowing-fiesta.sqlite3'}"
    url = request.getfixturevalue("mysql_url")
    clear_mysql(url)
    return url


@pytest.fixture(scope="session")
def chdb_engine(tmp_path_factory):
    """The run's in-process ClickHouse engine: (its directory, a client that keeps it open)."""
    import clickhouse_connect

    path = tmp_path_factory.mktemp("chdb")
    keeper = clickhouse_connect.get_client(interface="chdb", path=str(path))
    yield path, keeper
    keeper.close()


_POINTS_DATABASES = itertools.count(1)


def clickhouse_points_url(request):
    """POINTS_URL of a ClickHouse database of this test's own in the run's engine, dropped
    afterwards. A test that never opened it fails: it did not test what it claims."""
    path, keeper = request.getfixturevalue("chdb_engine")
    database = f"test_{next(_POINTS_DATABASES)}"

    def drop():
        used = keeper.command(f"EXISTS DATABASE {database}")
        keeper.command(f"DROP DATABASE IF EXISTS {database} SYNC")
        if not used:
            pytest.fail(f"the test never used its ClickHouse database {database}")

    request.addfinalizer(drop)
    return f"chdb:///{path}?database={database}"


@pytest.fixture
def points_url(backend, request):
    """POINTS_URL of the test's backend: a ClickHouse database of the test's own, or None."""
    return clickhouse_points_url(request) if "clickhouse" in backend else None


@pytest.fixture
def make_app(database_url, points_url):
    """Build apps on the test's backend (several stand in for several servers)."""
    apps = []
    points = {"POINTS_URL": points_url} if points_url else {}

    def build(**overrides):
        app = create_app({"TESTING": True, "DATABASE_URL": database_url, **points, **overrides})
        apps.append(app)
        if get_store(app).sql.NAME == "sqlite":
            migrate(get_store(app).write)  # the MySQL database is migrated once per run
        get_store(app).points.migrate()  # a ClickHouse database per test
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
