"""The README's curl examples, run as written against a live server, in order: every answer it
documents (`# 201 {...}`) has that status and carries each field it names."""

import json
import re
import subprocess
import time

import jwt
import pytest

from app import create_app
from tests.harness import ROOT, Gunicorn
from tests.helpers import new_key

ANSWER = re.compile(r"^(?:(\d{3})\b)?\s*(.*)$", re.DOTALL)
# The JWT example's server takes HS256 tokens; $TOKEN is one for tenant default.
JWT_SETTINGS = {
    "JWT_SECRET": "readme-example-secret-of-32-bytes-or-more",
    "JWT_ISSUER": "https://login.example.com/",
    "JWT_AUDIENCE": "glowing-fiesta",
}
FIELD = re.compile(r'"([A-Za-z_][A-Za-z0-9_.]*)":')
WRAPPER = """
n=0
curl() {
    n=$((n + 1))
    command curl -s -o "$OUT/$n.body" -w '%{http_code}' "$@" > "$OUT/$n.status"
}
"""


def curl_blocks():
    """The README's sh blocks that run curl, as text."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, re.DOTALL)
    return [block for block in blocks if "curl " in block and "--retry" not in block]


def documented_answers(block):
    """[(how many curl calls it covers, the answer text)] in order; text None: no answer."""
    segments, calls, answer = [], 0, []
    for line in block.splitlines():
        stripped = line.strip()
        if stripped.startswith("curl "):
            if answer:
                segments.append((calls, " ".join(answer)))
                calls, answer = 0, []
            calls += 1
            if "   # " in line:
                answer.append(line.split("   # ", 1)[1].strip())
        elif stripped.startswith("#"):
            answer.append(stripped.lstrip("#").strip())
    segments.append((calls, " ".join(answer) if answer else None))
    return segments


def flat_keys(value):
    """Every key of every object in a JSON value."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in flat_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in flat_keys(v)}
    return set()


def check(answer, status, body):
    """The documented status (if any) and fields (if any) against a real answer."""
    expected_status, text = ANSWER.match(answer).groups()
    if expected_status:
        assert status == expected_status, (answer, status, body)
    names = set(FIELD.findall(text))
    if names:
        assert names <= flat_keys(json.loads(body)), (answer, body)
    return bool(expected_status or names)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    database = tmp_path_factory.mktemp("readme") / "readme.sqlite3"
    running = Gunicorn({"DATABASE_URL": f"sqlite:///{database}", **JWT_SETTINGS})
    subprocess.run(
        [".venv/bin/flask", "--app", "app", "db", "migrate"],
        cwd=ROOT,
        env={**running.env},
        check=True,
        capture_output=True,
    )
    yield running.start()
    running.stop()
    running.cleanup()


def readme_token():
    """A token as the README's example signs one."""
    claims = {
        "iss": JWT_SETTINGS["JWT_ISSUER"],
        "aud": JWT_SETTINGS["JWT_AUDIENCE"],
        "sub": "ci-bot",
        "tenant": "default",
        "scope": "read write",
        "exp": int(time.time()) + 3600,
    }
    return jwt.encode(claims, JWT_SETTINGS["JWT_SECRET"], algorithm="HS256")


def test_every_documented_answer_matches_a_real_one(server, tmp_path):
    app = create_app({"TESTING": True, "DATABASE_URL": server.env["DATABASE_URL"]})
    key, admin = new_key(app), new_key(app, "readme admin", scopes="admin")
    token = readme_token()
    checked = 0
    for number, block in enumerate(curl_blocks()):
        out = tmp_path / f"block{number}"
        out.mkdir()
        script = WRAPPER + block.replace("localhost:8000", f"localhost:{server.port}")
        done = subprocess.run(
            ["bash", "-c", script],
            env={
                "PATH": "/usr/bin:/bin",
                "KEY": key,
                "ADMIN": admin,
                "TOKEN": token,
                "OUT": str(out),
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        call = 0
        for calls, answer in documented_answers(block):
            for _ in range(calls):
                call += 1
                status = (out / f"{call}.status").read_text()
                assert status.startswith(("2", "4")), (block, status)
                if answer:
                    checked += check(answer, status, (out / f"{call}.body").read_text())
    assert checked >= 10  # the examples with a documented answer were all compared
