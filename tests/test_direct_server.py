"""gunicorn served directly, with no nginx in front: oversized bodies, slow clients and worker
recycling, through a real server on a loopback port."""

import http.client
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time

import pytest

from app import create_app, shutdown
from app.db import get_store
from app.db.migrate import migrate
from tests.harness import ROOT
from tests.helpers import new_key, stored_points

ONE_MIB = 1024 * 1024


@pytest.fixture
def direct_app(tmp_path):
    """An app on a SQLite database of the test's own (the server's state is what is tested)."""
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'direct.sqlite3'}"})
    migrate(get_store(app).write)
    yield app
    shutdown(app)


@pytest.fixture
def direct(direct_app, serve):
    """Start a server on ``direct_app``'s database with the given settings: (server, key)."""

    def start(**env):
        return serve(DATABASE_URL=direct_app.config["DATABASE_URL"], **env), new_key(direct_app)

    return start


def post_answered_midway(server, path, body, headers):
    """POST ``body`` with its Content-Length, sending its second half only once the server has
    answered: a client still sending when the answer comes. (status, headers, JSON body)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.connect()

    def halves():
        yield body[: len(body) // 2]
        select.select([conn.sock], [], [], 10)  # the answer (or the server's close) is in
        yield body[len(body) // 2 :]

    headers = {**headers, "Content-Type": "application/json", "Content-Length": str(len(body))}
    try:
        conn.request("POST", path, body=halves(), headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read())
    finally:
        conn.close()


def oversized_counter(size):
    """A counter body of exactly ``size`` bytes."""
    start = b'{"name": "too.big"'
    return start + b" " * (size - len(start) - 1) + b"}"


def test_an_oversized_body_with_its_length_is_answered_413(direct, direct_app, tmp_path):
    server, key = direct()
    body = oversized_counter(ONE_MIB + 1)
    for connection in ("close", "keep-alive"):
        status, headers, payload = post_answered_midway(
            server, "/api/metrics/counter", body, {"X-API-Key": key, "Connection": connection}
        )
        assert (status, payload["error"]["code"]) == (413, "PAYLOAD_TOO_LARGE")
        assert headers["Connection"] == "close"  # the rest of the body is not read
    (tmp_path / "big.json").write_bytes(body)
    curl = subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", "--data-binary", f"@{tmp_path / 'big.json'}"]
        + ["-H", f"X-API-Key: {key}", "-H", "Content-Type: application/json"]
        + [f"{server.base}/api/metrics/counter"],
        capture_output=True,
        timeout=30,
    )
    answer, _, code = curl.stdout.rpartition(b"\n")
    assert (code, json.loads(answer)["error"]["code"]) == (b"413", "PAYLOAD_TOO_LARGE")
    assert stored_points(direct_app, "too.big") == []


class SlowClients:
    """Connections that send their requests a byte at a time: half dribble their headers,
    half their bodies after complete headers. None of them finishes while it runs."""

    def __init__(self, server, count, tick=0.5):
        self.sockets = []
        for n in range(count):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            if n % 2:
                head = b"POST /api/metrics/counter HTTP/1.1\r\nHost: x\r\nContent-Length: 9000\r\n"
                sock.sendall(head + b"Content-Type: application/json\r\n\r\n{")
            else:
                sock.sendall(b"G")
            self.sockets.append(sock)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._dribble, args=(tick,))
        self.thread.start()

    def _dribble(self, tick):
        head = iter(b"ET /api/metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 9000)
        while not self.stop.wait(tick):
            byte = bytes([next(head)])
            for n, sock in enumerate(self.sockets):
                try:
                    sock.send(byte if n % 2 == 0 else b" ")
                except OSError:
                    pass  # the server gave up on it

    def close(self):
        """Stop sending and close every connection."""
        self.stop.set()
        self.thread.join(10)
        for sock in self.sockets:
            sock.close()


def timed_get(server, path, headers, timeout):
    """Seconds until ``path`` answered 200 (``timeout`` if it did not in time)."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        return time.monotonic() - started
    except TimeoutError:
        return timeout
    finally:
        conn.close()


def test_slow_clients_do_not_starve_the_others(direct):
    # The read timeout is longer than the test: the server must cope without dropping them.
    server, key = direct(REQUEST_READ_TIMEOUT="60")
    slow = SlowClients(server, 64)
    try:
        latencies = [
            timed_get(server, "/api/metrics?limit=1", {"X-API-Key": key}, timeout=2)
            for _ in range(6)
        ]
    finally:
        slow.close()
    assert max(latencies) < 1, latencies


def read_until_closed(sock, timeout):
    """Everything the server sends until it closes the connection."""
    sock.settimeout(timeout)
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_request_not_sent_within_the_read_timeout_is_408(direct):
    server, _ = direct(REQUEST_READ_TIMEOUT="1")
    idle = socket.create_connection(("127.0.0.1", server.port))
    slow_head = socket.create_connection(("127.0.0.1", server.port))
    slow_head.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    slow_body = socket.create_connection(("127.0.0.1", server.port))
    slow_body.sendall(b"POST /api/metrics/counter HTTP/1.1\r\nContent-Length: 20\r\n\r\n{")
    started = time.monotonic()
    for sock in (slow_head, slow_body):
        head, _, body = read_until_closed(sock, timeout=5).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 ")
        assert json.loads(body)["error"]["code"] == "BAD_REQUEST"
    assert read_until_closed(idle, timeout=5) == b""  # a connection that never sent a byte
    assert time.monotonic() - started < 4
    for sock in (idle, slow_head, slow_body):
        sock.close()


def test_a_body_sent_in_pieces_is_served_whole(direct, direct_app):
    server, key = direct()
    body = json.dumps({"name": "pieces", "value": 7}).encode()
    head = (
        f"POST /api/metrics/value HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        for piece in (head[:10], head[10:], body[:5]):
            sock.sendall(piece)
            assert select.select([sock], [], [], 0.05)[0] == []  # nothing answered yet
        sock.sendall(body[5:])
        answer = read_until_closed(sock, timeout=10)
    assert answer.startswith(b"HTTP/1.1 201 ")
    assert [value for _, value in stored_points(direct_app, "pieces")] == [7.0]


def test_expect_100_continue_is_answered_once(direct, direct_app):
    server, key = direct()
    body = json.dumps({"name": "expected"}).encode()
    head = (
        f"POST /api/metrics/counter HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Expect: 100-continue\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head)
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        answer = read_until_closed(sock, timeout=10)
    assert answer.startswith(b"HTTP/1.1 201 ")
    assert b"100 Continue" not in answer
    assert len(stored_points(direct_app, "expected")) == 1


def gunicorn_settings(tmp_path, **env):
    """The settings gunicorn resolves from gunicorn.conf.py under ``env``."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"), **env}
    command = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--print-config"]
    printed = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    pairs = (line.split("=", 1) for line in printed.stdout.splitlines() if "=" in line)
    return {name.strip(): value.strip() for name, value in pairs}


def test_workers_are_recycled_only_when_asked(tmp_path):
    settings = gunicorn_settings(tmp_path)
    assert (settings["max_requests"], settings["max_requests_jitter"]) == ("0", "0")
    settings = gunicorn_settings(tmp_path, WORKER_MAX_REQUESTS="5000")
    assert (settings["max_requests"], settings["max_requests_jitter"]) == ("5000", "500")
