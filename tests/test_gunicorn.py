"""A smoke set through a real gunicorn on a socket, on both backends."""

import json
import threading

from scripts.sync_bench import BARE_APP
from tests.clients import call
from tests.harness import Gunicorn
from tests.helpers import new_key, stored_points


def test_ingest_through_gunicorn(app, database_url, serve):
    server = serve(DATABASE_URL=database_url)
    auth = {"X-API-Key": new_key(app)}
    assert call(server, "GET", "/health")[0] == 200
    assert call(server, "GET", "/ready")[0] == 200
    curl_like = b'{"name": "gunicorn.views"}'
    status, headers, body = call(
        server, "POST", "/api/metrics/counter", curl_like, auth, "application/x-www-form-urlencoded"
    )
    assert (status, body) == (201, {"success": True, "message": "Counter metric recorded"})
    assert headers["X-RateLimit-Limit"] == "1000"
    batch = {"metrics": [{"name": "gunicorn.views", "type": "counter", "value": 2}, {"x": 1}]}
    status, _, body = call(server, "POST", "/api/metrics/batch", batch, auth)
    assert (status, body["accepted"], body["rejected"]) == (201, 1, 1)
    status, _, body = call(server, "POST", "/api/metrics/value", b"{nope", auth)
    assert (status, body["error"]["code"]) == (400, "INVALID_JSON")
    status, _, body = call(server, "POST", "/api/metrics/value", {"name": "x", "value": 1})
    assert (status, body["error"]["code"]) == (401, "UNAUTHORIZED")
    status, _, body = call(server, "GET", "/missing")
    assert (status, body["error"]["code"]) == (404, "NOT_FOUND")
    assert sorted(v for _, v in stored_points(app, "gunicorn.views")) == [1.0, 2.0]


def several_workers(database_url, request):
    """Three worker processes; on MySQL the limits are shared through the test Redis db."""
    env = {"DATABASE_URL": database_url, "WEB_CONCURRENCY": "3", "THREADS": "4"}
    if database_url.startswith("mysql"):
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
    return env


def test_concurrent_writers_on_several_workers_lose_nothing(app, database_url, serve, request):
    server = serve(**several_workers(database_url, request))
    auth = {"X-API-Key": new_key(app)}
    statuses = []
    lock = threading.Lock()

    def writer(n):
        for i in range(25):
            body = {"name": f"conc.{(n + i) % 3}", "value": n}
            status = call(server, "POST", "/api/metrics/counter", body, auth)[0]
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert statuses.count(201) == 200
    assert sum(len(stored_points(app, f"conc.{i}")) for i in range(3)) == 200


def test_sigterm_finishes_in_flight_writes_and_every_201_is_stored(app, database_url, serve):
    server = serve(DATABASE_URL=database_url, THREADS="8")
    auth = {"X-API-Key": new_key(app)}
    created = []
    stop = threading.Event()

    def writer():
        while not stop.is_set():
            try:
                status = call(server, "POST", "/api/metrics/counter", {"name": "term"}, auth)[0]
            except OSError:  # refused or reset once the server has stopped accepting
                return
            if status == 201:
                created.append(1)

    threads = [threading.Thread(target=writer) for _ in range(6)]
    for thread in threads:
        thread.start()
    while len(created) < 30:
        stop.wait(0.01)
    assert server.stop() == 0  # SIGTERM while requests are in flight; graceful exit
    stop.set()
    for thread in threads:
        thread.join(60)
    stored = len(stored_points(app, "term"))
    # Every 201 is stored; a write may also land whose answer the closing socket swallowed.
    assert len(created) <= stored <= len(created) + len(threads)


def raw_exchange(server, payload):
    """Send raw bytes to the server; the status line and the JSON body it answers."""
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(payload)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, json.loads(body)


def test_gunicorn_level_errors_are_json(tmp_path, serve):
    server = serve(DATABASE_URL=f"sqlite:///{tmp_path / 'g.sqlite3'}")
    long_line = b"GET /api/metrics/aggregate?name=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    status, headers, body = raw_exchange(server, long_line)
    assert (status, headers["Content-Type"]) == (400, "application/json")
    assert body["success"] is False and body["error"]["code"] == "VALIDATION_ERROR"
    big_header = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n"
    status, headers, body = raw_exchange(server, big_header)
    assert (status, headers["Content-Type"]) == (431, "application/json")
    endless_head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 70_000
    status, _, body = raw_exchange(server, endless_head)
    assert (status, body["error"]["code"]) == (431, "VALIDATION_ERROR")
    garbage = b"NOT-HTTP\r\n\r\n"
    status, _, body = raw_exchange(server, garbage)
    assert status == 400 and body["success"] is False


def chunked_post(server, auth, body):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request(
        "POST",
        "/api/metrics/counter",
        body=iter([body]),
        encode_chunked=True,
        headers={**auth, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
    )
    response = conn.getresponse()
    payload = json.loads(response.read())
    conn.close()
    return response.status, payload


def test_chunked_bodies_obey_the_size_limit(app, tmp_path, database_url, serve):
    server = serve(DATABASE_URL=database_url, MAX_CONTENT_LENGTH="1000")
    auth = {"X-API-Key": new_key(app)}
    status, _ = chunked_post(server, auth, b'{"name": "chunked"}')
    assert status == 201
    status, payload = chunked_post(server, auth, b'{"name": "chunked.big"}' + b" " * 2000)
    assert (status, payload["error"]["code"]) == (413, "PAYLOAD_TOO_LARGE")
    assert stored_points(app, "chunked.big") == []


def test_a_malformed_chunked_body_is_400(app, database_url, serve):
    server = serve(DATABASE_URL=database_url)
    head = (
        "POST /api/metrics/counter HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"X-API-Key: {new_key(app)}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    status, _, body = raw_exchange(server, head.encode() + b"zz\r\n{}\r\n0\r\n\r\n")
    assert (status, body["error"]["code"]) == (400, "VALIDATION_ERROR")


def test_bench_bare_app_boots_from_the_same_config(tmp_path):
    """make bench-ingest's floor is served by gunicorn.conf.py too; its worker hooks must
    accept an app that is not the service."""
    server = Gunicorn({"DATABASE_URL": f"sqlite:///{tmp_path}/bare.db"}, app_uri=BARE_APP)
    try:
        server.start()
        status, _, body = call(server, "POST", "/api/metrics/value", {"name": "b", "value": 1})
        assert (status, body["success"]) == (201, True)
    finally:
        server.stop()
        server.cleanup()
