"""The shipped deploy/nginx.conf, run by a real nginx in front of two gunicorns that share one
MariaDB database and one Redis (TRUSTED_PROXY_HOPS=1, as deployed).

What a client and an operator see through it: requests spread over both app servers, each
with its request id and the client's real address in the app's access record; nginx's own
errors (413, 403, 502) in the service's JSON envelope; an app server drained and restarted
under load without a failed request, and one killed without losing an acknowledged point.
"""

import gzip
import http.client
import json
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from app import config
from tests.clients import hammer, values_with
from tests.harness import ROOT, Nginx
from tests.helpers import new_key, stored_points

SITE = ROOT / "deploy" / "nginx.conf"
COUNTER = "/api/metrics/counter"
# The test client sends from another loopback address than nginx's own connections to the app
# servers (127.0.0.1): the address the app logs can only be the client's, via X-Forwarded-For.
CLIENT_ADDRESS = "127.0.0.3"
CLIENTS = 8


def render_site(listen_port, upstream_ports, access_log, down=()):
    """deploy/nginx.conf with its tagged lines (``# @listen``, ``# @upstream``,
    ``# @access_log``) replaced: loopback ports, a temporary log, ``down`` servers marked so."""
    replacements = {
        "listen": [f"listen 127.0.0.1:{listen_port};"],
        "upstream": [
            f"server 127.0.0.1:{port}{' down' if port in down else ''};" for port in upstream_ports
        ],
        "access_log": [f"access_log {access_log} glowing_fiesta;"],
    }
    lines, replaced = [], set()
    for line in SITE.read_text().splitlines():
        tagged = re.match(r"^(\s*)\S.*;\s*# @(\w+)$", line)
        if not tagged:
            lines.append(line)
        elif tagged.group(2) not in replaced:  # a tag's lines are one group, replaced whole
            replaced.add(tagged.group(2))
            lines += [tagged.group(1) + new for new in replacements[tagged.group(2)]]
    assert replaced == set(replacements), f"deploy/nginx.conf lost a tag: {replaced}"
    return "\n".join(lines) + "\n"


@dataclass
class Stack:
    """nginx (the shipped site file) in front of two app servers."""

    nginx: Nginx
    servers: list

    def configure(self, down=()):
        """Render the site for the current ports, ``down`` servers drained."""
        ports = [server.port for server in self.servers]
        access_log = self.nginx.directory / "access.log"
        self.nginx.configure(render_site(self.nginx.port, ports, access_log, down))
        return self

    def nginx_records(self):
        """nginx's access log, parsed."""
        return [json.loads(line) for line in complete_lines(self.nginx.directory / "access.log")]


def complete_lines(path):
    """The lines of a log another process is writing, less one it has only begun."""
    return path.read_text().split("\n")[:-1]


@pytest.fixture
def stack(mysql_app, mysql_url, redis_url, serve):
    """Two gunicorns on one installation behind a fresh nginx; stopped after the test."""
    if not Path(Nginx.BINARY).exists():
        pytest.fail(f"{Nginx.BINARY} is missing: `make test` installs Debian's nginx")
    env = {
        "DATABASE_URL": mysql_url,
        "REDIS_URL": redis_url,
        "TRUSTED_PROXY_HOPS": "1",
        "LOG_LEVEL": "INFO",
        "WEB_CONCURRENCY": "2",
        "THREADS": "8",
    }
    servers = [serve(**env), serve(**env)]
    # Not under pytest's tmp_path: nginx's workers (nobody, when run as root) must reach it.
    directory = Path(tempfile.mkdtemp(prefix="gf-nginx-"))
    stack = Stack(Nginx(directory), servers)
    try:
        stack.configure().nginx.start()
        yield stack
    finally:
        stack.nginx.stop()
        shutil.rmtree(directory, ignore_errors=True)


def send(nginx, method, path, body=None, headers=None, source=CLIENT_ADDRESS):
    """One request to nginx on a new connection from ``source``: (status, headers, body)."""
    conn = http.client.HTTPConnection(
        "127.0.0.1", nginx.port, timeout=30, source_address=(source, 0)
    )
    try:
        payload = json.dumps(body) if isinstance(body, dict) else body
        conn.request(method, path, payload, headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def wait_for(condition, what, timeout=30):
    """Poll ``condition`` until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def access_records(server):
    """The app server's access records, by request id."""
    records = [json.loads(line) for line in complete_lines(server.log_path)]
    return {r["request_id"]: r for r in records if r["logger"] == "glowing_fiesta.access"}


def test_requests_reach_both_servers_with_their_request_id_and_client_address(mysql_app, stack):
    auth = {"X-API-Key": new_key(mysql_app)}
    sent = [f"client-id-{n}" for n in range(12)]
    for request_id in sent:
        headers = {**auth, "X-Request-ID": request_id, "X-Forwarded-For": "203.0.113.7"}
        status, answer, _ = send(stack.nginx, "POST", COUNTER, {"name": "proxied"}, headers)
        assert (status, answer["X-Request-ID"]) == (201, request_id)
    status, answer, _ = send(stack.nginx, "POST", COUNTER, {"name": "proxied"}, auth)
    generated = answer["X-Request-ID"]
    assert status == 201 and re.fullmatch(r"[0-9a-f]{32}", generated), generated

    by_server = [access_records(server) for server in stack.servers]
    assert all(set(sent) & set(records) for records in by_server), "one server got nothing"
    records = {rid: r for records in by_server for rid, r in records.items()}
    for request_id in [*sent, generated]:
        record = records[request_id]
        assert (record["status"], record["route"]) == (201, COUNTER)
        assert record["client"] == CLIENT_ADDRESS  # not nginx's 127.0.0.1, not the forged one
    # nginx writes its access record once the answer is sent: wait for it.
    wait_for(lambda: any(r["request_id"] == generated for r in stack.nginx_records()), "nginx")
    nginx_record = next(r for r in stack.nginx_records() if r["request_id"] == generated)
    server = next(s for s, rs in zip(stack.servers, by_server, strict=True) if generated in rs)
    assert nginx_record["upstream"] == f"127.0.0.1:{server.port}"
    assert nginx_record["client"] == CLIENT_ADDRESS

    query = "/api/metrics/aggregate?name=proxied&window=1m"  # a day of minutes: 1,441 buckets
    status, headers, body = send(
        stack.nginx, "GET", query, headers={**auth, "Accept-Encoding": "gzip"}
    )
    assert (status, headers["Content-Encoding"]) == (200, "gzip")
    data = json.loads(gzip.decompress(body))["data"]
    assert sum(bucket["value"] for bucket in data) == len(sent) + 1


def assert_envelope(status, headers, body, expected_status, code):
    """nginx's own answer in the service's JSON error envelope."""
    assert status == expected_status, body
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["success"] is False
    assert json.loads(body)["error"]["code"] == code
    assert re.fullmatch(r"[0-9a-f]{32}|[\w.-]+", headers["X-Request-ID"])


def test_nginx_answers_its_own_errors_in_the_json_envelope(mysql_app, stack):
    auth = {"X-API-Key": new_key(mysql_app), "X-Request-ID": "too-big"}
    two_mib = b'{"metrics": [' + b" " * (2 * 1024 * 1024) + b"]}"
    answer = send(stack.nginx, "POST", "/api/metrics/batch", two_mib, auth)
    assert_envelope(*answer, 413, "PAYLOAD_TOO_LARGE")
    assert answer[1]["X-Request-ID"] == "too-big"
    assert not any("too-big" in access_records(server) for server in stack.servers)

    status, headers, body = send(
        stack.nginx, "GET", "/metrics", headers={"Accept-Encoding": "gzip"}, source="127.0.0.1"
    )
    assert (status, headers["Content-Encoding"]) == (200, "gzip")
    assert b"gf_http_requests_total" in gzip.decompress(body)
    assert_envelope(*send(stack.nginx, "GET", "/metrics"), 403, "FORBIDDEN")  # not internal
    status, _, body = send(stack.nginx, "GET", "/api/metrics/no.such.metric", headers=auth)
    assert (status, json.loads(body)["error"]["code"]) == (404, "METRIC_NOT_FOUND")  # the app's

    for server in stack.servers:
        server.stop()
    status, headers, body = send(stack.nginx, "POST", COUNTER, {"name": "nobody"}, auth)
    assert_envelope(status, headers, body, 502, "SERVICE_UNAVAILABLE")
    assert headers["Retry-After"] == "5"


def load(nginx, key, stop, fresh_connections):
    """POST counters through nginx from CLIENTS threads until ``stop`` is set: the list of
    (status, value) seen so far (None: no answer), and the threads."""
    headers = {"X-API-Key": key, **({"Connection": "close"} if fresh_connections else {})}
    threads, seen = hammer(nginx, headers, CLIENTS, stop, name="through.nginx")
    return seen, threads


def served_counters(server, since_line):
    """Counters the app server answered after the first ``since_line`` lines of its log."""
    records = [json.loads(line) for line in complete_lines(server.log_path)[since_line:]]
    return [r for r in records if r.get("route") == COUNTER and r.get("status") == 201]


def test_draining_a_server_under_load_fails_no_request(mysql_app, stack):
    """The rolling restart of docs/DEPLOYMENT.md: mark the server down, reload nginx (its old
    workers finish their requests), restart the server gracefully, bring it back. Clients open
    a connection per request: a reload also closes nginx's idle client connections, a race
    between nginx and its clients that is not the app's."""
    drained, other = stack.servers
    stop = threading.Event()
    seen, threads = load(stack.nginx, new_key(mysql_app, rate_limit=1_000_000), stop, True)
    try:
        wait_for(lambda: len(values_with(seen, 201)) >= 200, "the load to start")
        stack.configure(down=[drained.port]).nginx.reload()
        drained_from = len(stack.nginx_records())
        restarted_from = len(complete_lines(drained.log_path))
        other_from = len(complete_lines(other.log_path))
        assert drained.stop() == 0
        drained.start()
        drained_until = len(stack.nginx_records())
        stack.configure().nginx.reload()
        wait_for(lambda: served_counters(drained, restarted_from), "the restarted server's turn")
        wait_for(lambda: len(served_counters(other, other_from)) >= 50, "more load")
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert {code for code, _ in seen} == {201}
    stored = {value for _, value in stored_points(mysql_app, "through.nginx")}
    assert stored == values_with(seen, 201)
    while_down = stack.nginx_records()[drained_from:drained_until]
    assert while_down and not [r for r in while_down if str(drained.port) in r["upstream"]]


def test_a_killed_server_loses_no_acknowledged_point(mysql_app, stack):
    killed, survivor = stack.servers
    stop = threading.Event()
    seen, threads = load(stack.nginx, new_key(mysql_app, rate_limit=1_000_000), stop, False)
    try:
        wait_for(lambda: len(values_with(seen, 201)) >= 300, "the load to start")
        killed.kill()
        after_kill = len(seen)
        wait_for(lambda: len(values_with(seen[after_kill:], 201)) >= 300, "the survivor's turn")
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    codes = [code for code, _ in seen]
    # Requests the killed server held fail: a 502, or no answer when it died mid-answer (nginx
    # had passed its status on). One a client, plus those nginx had just sent it.
    assert set(codes) <= {201, 502, None}, set(codes)
    assert codes.count(502) + codes.count(None) <= 2 * CLIENTS
    acknowledged = values_with(seen, 201)
    unanswered = values_with(seen, 502) | values_with(seen, None)
    stored = {value for _, value in stored_points(mysql_app, "through.nginx")}
    assert acknowledged <= stored <= acknowledged | unanswered
    assert survivor.process.poll() is None


def test_the_example_environment_is_a_valid_production_configuration():
    """deploy/glowing-fiesta.env.example loads as the service's settings, names only variables
    the service reads (those commented out too), and takes the bodies nginx lets through."""
    example = (ROOT / "deploy" / "glowing-fiesta.env.example").read_text()
    named = {name for name, _ in re.findall(r"^(?:# )?([A-Z_]+)=(.*)$", example, re.M)}
    assert named <= set(config.VARIABLES), named - set(config.VARIABLES)
    environ = dict(re.findall(r"^([A-Z_]+)=(.*)$", example, re.M))
    settings = config.load(environ)
    assert config.server_settings(environ)["bind"] == "127.0.0.1:8000"  # the unit sets PORT
    assert (settings["TRUSTED_PROXY_HOPS"], settings["REDIS_URL"] is not None) == (1, True)
    body_limit = re.search(r"^\s*client_max_body_size (\d+)m;", SITE.read_text(), re.M)
    assert settings["MAX_CONTENT_LENGTH"] == int(body_limit.group(1)) * 1024 * 1024
