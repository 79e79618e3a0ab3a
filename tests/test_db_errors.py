"""Error classification against errors the real MariaDB raises: outages are 503, bugs 500."""

import sqlite3
import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from app.db import create_engine_for, engine_events, get_store, sql_sqlite
from app.db.errors import is_retriable_error, is_unavailable_error, mysql_code
from tests.harness import free_port
from tests.helpers import new_key


@pytest.fixture
def engine(mysql_url):
    engine = create_engine_for(mysql_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE IF NOT EXISTS scratch_parts (d INT NOT NULL) "
                "PARTITION BY RANGE (d) (PARTITION p0 VALUES LESS THAN (10))"
            )
        )
    yield engine
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE scratch_parts"))
    engine.dispose()


def raised_by(engine, statement):
    with pytest.raises(DBAPIError) as caught, engine.begin() as conn:
        conn.execute(text(statement))
    return caught.value


@pytest.mark.parametrize(
    "statement, code",
    [
        ("INSERT INTO scratch_parts VALUES (20)", 1526),  # no partition for the value
        ("SELECT no_such_column FROM scratch_parts", 1054),
        ("SELECT * FROM no_such_table", 1146),
    ],
)
def test_server_errors_from_our_own_sql_are_bugs(engine, statement, code):
    error = raised_by(engine, statement)
    assert mysql_code(error) == code
    assert not is_unavailable_error(error) and not is_retriable_error(error)


def test_pymysql_calls_unmapped_server_errors_operational(engine):
    # Why the classification goes by number: this bug arrives as an OperationalError.
    assert isinstance(raised_by(engine, "INSERT INTO scratch_parts VALUES (20)"), OperationalError)


def test_an_unreachable_server_is_unavailable():
    engine = create_engine_for(f"mysql+pymysql://root@127.0.0.1:{free_port()}/x")
    with pytest.raises(DBAPIError) as caught, engine.connect():
        pass
    assert mysql_code(caught.value) == 2003
    assert is_unavailable_error(caught.value)
    engine.dispose()


def test_a_pooled_connection_killed_while_idle_is_replaced_unseen(mysql_app, monkeypatch):
    monkeypatch.setattr(engine_events, "PING_AFTER_IDLE_SECONDS", 0.05)
    client = mysql_app.test_client()
    auth = {"X-API-Key": new_key(mysql_app)}
    assert (
        client.post("/api/metrics/counter", json={"name": "pool"}, headers=auth).status_code == 201
    )
    engine = get_store(mysql_app).write
    admin = create_engine_for(str(engine.url))
    with admin.connect() as conn:
        mine = conn.execute(text("SELECT CONNECTION_ID()")).scalar()
        ids = (
            conn.execute(
                text(
                    "SELECT id FROM information_schema.processlist"
                    " WHERE db = DATABASE() AND id != :me"
                ),
                {"me": mine},
            )
            .scalars()
            .all()
        )
        for connection_id in ids:
            conn.execute(text(f"KILL {int(connection_id)}"))
    admin.dispose()
    time.sleep(0.2)
    assert (
        client.post("/api/metrics/counter", json={"name": "pool"}, headers=auth).status_code == 201
    )


def test_a_fresh_sqlite_file_locked_by_another_process_is_switched_to_wal_once_free(tmp_path):
    """Two processes opening a new database at once (`make run &` and `make api-key`): the
    switch to WAL takes an exclusive lock without waiting, so it is tried again."""
    path = tmp_path / "fresh.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")  # the file is still in rollback mode, and locked
    holder.execute("INSERT INTO t VALUES (1)")
    threading.Timer(0.3, lambda: holder.execute("COMMIT")).start()
    engine = sql_sqlite.create(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        engine.dispose()
        holder.close()
