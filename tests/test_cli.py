"""The key commands and `make api-key`, `make migrate` as a user runs them."""

import os
import re
import subprocess

from sqlalchemy import text

from app.api.auth import KEY_RE
from app.db import get_store
from app.db.migrate import migrate, migration_files
from tests.harness import ROOT

COUNTER = "/api/metrics/counter"


def create(runner, *args):
    result = runner.invoke(args=["keys", "create", *args])
    assert result.exit_code == 0, result.output
    return result


def test_create_prints_the_key_alone_as_the_last_stdout_line(runner, client):
    raw = create(runner, "--name", "My App").stdout.splitlines()[-1]
    assert KEY_RE.match(raw)
    response = client.post(COUNTER, json={"name": "cli"}, headers={"X-API-Key": raw})
    assert response.status_code == 201


def test_create_with_rate_sets_the_key_limit(runner, client):
    raw = create(runner, "--name", "Slow", "--rate", "7").stdout.splitlines()[-1]
    response = client.post(COUNTER, json={"name": "cli"}, headers={"X-API-Key": raw})
    assert response.headers["X-RateLimit-Limit"] == "7"


def test_list_shows_prefixes_never_keys(runner):
    raw = create(runner, "--name", "Listed").stdout.splitlines()[-1]
    output = runner.invoke(args=["keys", "list"]).output
    assert raw[:11] in output and "Listed" in output and "active" in output
    assert raw not in output


def test_revoke_by_id_marks_it_revoked(runner, app):
    create(runner, "--name", "Doomed")
    with get_store(app).write.connect() as conn:
        key_id = conn.execute(text("SELECT id FROM api_keys")).scalar()
    assert runner.invoke(args=["keys", "revoke", str(key_id)]).exit_code == 0
    assert "revoked" in runner.invoke(args=["keys", "list"]).output


def test_revoke_unknown_key_fails(runner):
    result = runner.invoke(args=["keys", "revoke", "gf_nothere"])
    assert result.exit_code != 0 and "No API key" in result.output


def test_rotate_replaces_the_key(runner, make_app):
    raw = create(runner, "--name", "Rotating", "--rate", "9").stdout.splitlines()[-1]
    result = runner.invoke(args=["keys", "rotate", raw[:11]])
    assert result.exit_code == 0, result.output
    new_raw = result.stdout.splitlines()[-1]
    assert KEY_RE.match(new_raw) and new_raw != raw
    fresh = make_app().test_client()  # a server with no cached lookups
    assert fresh.post(COUNTER, json={"name": "r"}, headers={"X-API-Key": raw}).status_code == 401
    response = fresh.post(COUNTER, json={"name": "r"}, headers={"X-API-Key": new_raw})
    assert response.status_code == 201 and response.headers["X-RateLimit-Limit"] == "9"


def test_migrate_again_is_a_no_op(app, runner):
    assert runner.invoke(args=["db", "migrate"]).exit_code == 0
    assert migrate(get_store(app).write) == []
    with get_store(app).write.connect() as conn:
        versions = conn.execute(text("SELECT version FROM schema_migrations")).scalars().all()
    assert versions == [version for version, _ in migration_files(get_store(app).write)]
    assert versions[0] == "001_initial"


def test_make_api_key_prints_a_working_key(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'make.sqlite3'}"}
    env.pop("MAKEFLAGS", None)
    result = subprocess.run(
        ["make", "--no-print-directory", "api-key", "NAME=From Make", "RATE=12"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"gf_[A-Za-z0-9_-]{43}", result.stdout.splitlines()[-1])
