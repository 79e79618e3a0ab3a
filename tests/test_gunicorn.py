"""A smoke set through a real gunicorn on a socket, on both backends."""

import json
import threading
import urllib.error
import urllib.request

from tests.conftest import new_key, stored_points


def request(server, method, path, body=None, headers=None, content_type="application/json"):
    data = (
        None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    )
    req = urllib.request.Request(server.base + path, data=data, method=method)
    for name, value in {**(headers or {}), "Content-Type": content_type}.items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_ingest_through_gunicorn(app, database_url, serve):
    server = serve(DATABASE_URL=database_url)
    auth = {"X-API-Key": new_key(app)}
    assert request(server, "GET", "/health")[0] == 200
    assert request(server, "GET", "/ready")[0] == 200
    curl_like = b'{"name": "gunicorn.views"}'
    status, headers, body = request(
        server, "POST", "/api/metrics/counter", curl_like, auth, "application/x-www-form-urlencoded"
    )
    assert (status, body) == (201, {"success": True, "message": "Counter metric recorded"})
    assert headers["X-RateLimit-Limit"] == "1000"
    batch = {"metrics": [{"name": "gunicorn.views", "type": "counter", "value": 2}, {"x": 1}]}
    status, _, body = request(server, "POST", "/api/metrics/batch", batch, auth)
    assert (status, body["accepted"], body["rejected"]) == (201, 1, 1)
    status, _, body = request(server, "POST", "/api/metrics/value", b"{nope", auth)
    assert (status, body["error"]["code"]) == (400, "INVALID_JSON")
    status, _, body = request(server, "POST", "/api/metrics/value", {"name": "x", "value": 1})
    assert (status, body["error"]["code"]) == (401, "UNAUTHORIZED")
    status, _, body = request(server, "GET", "/missing")
    assert (status, body["error"]["code"]) == (404, "NOT_FOUND")
    assert sorted(v for _, v in stored_points(app, "gunicorn.views")) == [1.0, 2.0]


def test_concurrent_writers_lose_nothing(app, database_url, serve):
    server = serve(DATABASE_URL=database_url, THREADS="8")
    auth = {"X-API-Key": new_key(app)}
    statuses = []
    lock = threading.Lock()

    def writer(n):
        for i in range(25):
            body = {"name": f"conc.{i % 3}", "value": n}
            status = request(server, "POST", "/api/metrics/counter", body, auth)[0]
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert statuses.count(201) == 200
    assert sum(len(stored_points(app, f"conc.{i}")) for i in range(3)) == 200


def test_sigterm_lets_the_server_exit_cleanly(app, database_url, serve):
    server = serve(DATABASE_URL=database_url)
    auth = {"X-API-Key": new_key(app)}
    assert request(server, "POST", "/api/metrics/counter", {"name": "bye"}, auth)[0] == 201
    server.process.terminate()
    assert server.process.wait(timeout=30) == 0
    assert len(stored_points(app, "bye")) == 1
