"""What a person sees when the service cannot start: one or two lines naming the setting (or
the database) and the fix, a non-zero exit status, no traceback unless LOG_LEVEL=DEBUG."""

import os
import socket
import subprocess
import sys
import time

import pytest

from tests.clients import call
from tests.harness import ROOT, drop_database, free_port, recreate_database
from tests.helpers import MYSQL_SERVER_URL


def run(*command, timeout=60, **env):
    """Run a command of the project with ``env`` (and nothing of the developer's settings)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("METRICS_", "DATABASE"))}
    done = subprocess.run(
        command, cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=timeout
    )
    return done.returncode, done.stderr.strip().splitlines()


GUNICORN = (sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py")
FLASK = (sys.executable, "-m", "flask", "--app", "app")


def test_a_bad_setting_stops_the_server_in_one_line(tmp_path):
    code, lines = run(*GUNICORN, METRICS_MAX_BATCH="abc", PORT=str(free_port()))
    assert code == 2 and lines == [
        "glowing-fiesta: METRICS_MAX_BATCH must be an integer, got 'abc'"
    ]
    code, lines = run(*FLASK, "db", "migrate", METRICS_MAX_BATCH="abc")
    assert code == 2 and len(lines) == 1 and "METRICS_MAX_BATCH" in lines[0]


def test_with_log_level_debug_the_traceback_stays(tmp_path):
    code, lines = run(*FLASK, "db", "migrate", METRICS_MAX_BATCH="abc", LOG_LEVEL="DEBUG")
    assert code != 0 and any("Traceback" in line for line in lines)


def test_a_port_in_use_stops_the_server_saying_which(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        database = f"sqlite:///{tmp_path / 'x.sqlite3'}"
        code, lines = run(*GUNICORN, PORT=str(port), DATABASE_URL=database)
    assert code == 2 and len(lines) == 1
    assert f"port {port}" in lines[0] and "PORT=" in lines[0]


def test_queue_mode_on_a_redis_that_may_lose_writes_stops_the_server(tmp_path):
    volatile = f"redis://127.0.0.1:{os.environ.get('TEST_REDIS_PORT', '6379')}/0"
    env = {"INGEST_MODE": "queue", "REDIS_URL": volatile, "PORT": str(free_port()),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"}  # fmt: skip
    code, lines = run(*GUNICORN, **env)
    assert code == 2 and 1 <= len(lines) <= 2
    assert "appendonly" in lines[0] and "QUEUE_ALLOW_VOLATILE_REDIS" in " ".join(lines)


@pytest.mark.parametrize(
    "url, says",
    [
        (f"{MYSQL_SERVER_URL}/gf_surely_missing", "does not exist"),
        (f"mysql+pymysql://root@127.0.0.1:{free_port()}/x", "cannot reach the database"),
    ],
)
def test_migrate_and_the_cli_say_what_is_wrong_with_the_database(url, says):
    for command in (("db", "migrate"), ("keys", "list")):
        code, lines = run(*FLASK, *command, DATABASE_URL=url)
        assert code == 1 and len(lines) == 1, lines
        assert says in lines[0] and "DATABASE_URL" in lines[0]


def test_the_running_server_answers_503_without_its_database_and_recovers(serve, tmp_path):
    """The server does not need the database to start: it answers 503 until it is there."""
    url = f"{MYSQL_SERVER_URL}/gf_test_late_{os.getpid()}"
    server = serve(DATABASE_URL=url)
    assert call(server, "GET", "/ready")[0] == 503
    recreate_database(MYSQL_SERVER_URL, url.rsplit("/", 1)[1])
    try:
        assert run(*FLASK, "db", "migrate", DATABASE_URL=url)[0] == 0
        deadline = time.monotonic() + 10
        while call(server, "GET", "/ready")[0] != 200:  # the answer is kept a second
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        drop_database(MYSQL_SERVER_URL, url.rsplit("/", 1)[1])
