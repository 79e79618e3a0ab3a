"""HTTP clients for tests that talk to a real gunicorn: one-shot calls, keep-alive sessions,
Prometheus scrapes."""

import http.client
import json
import re
import threading
import time
import urllib.error
import urllib.request

COUNTER = "/api/metrics/counter"


def call(server, method, path, body=None, headers=None, content_type="application/json"):
    """One request on a new connection: (status, headers, JSON body)."""
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


class Session:
    """A keep-alive connection to one server; reconnects after a dropped connection."""

    def __init__(self, server, headers=None):
        self.server = server
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.conn = None

    def post(self, path, body, headers=None):
        """POST JSON; (status, parsed body). Raises OSError when the server is gone."""
        return self.request("POST", path, body, headers)

    def request(self, method, path, body=None, headers=None):
        """Any request, a JSON body if given; (status, parsed body)."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)
        payload = None if body is None else json.dumps(body)
        try:
            self.conn.request(method, path, payload, {**self.headers, **(headers or {})})
            response = self.conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise OSError("connection lost") from None
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        return response.status, json.loads(payload)

    def close(self):
        """Drop the connection."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def hammer(server, headers, threads, stop, stop_after=None, name="load"):
    """POST counters to ``name`` from ``threads`` keep-alive clients until ``stop`` is set (or
    each has sent ``stop_after``): (the threads, the list of (status, value) seen so far; None:
    no answer, so the point may or may not be stored). Every value sent is distinct."""
    seen, lock = [], threading.Lock()

    def client(n):
        session = Session(server, headers)
        sent = 0
        while not stop.is_set() and (stop_after is None or sent < stop_after):
            value = n * 100_000 + sent
            try:
                status, _ = session.post(COUNTER, {"name": name, "value": value})
            except OSError:
                status = None
                time.sleep(0.05)
            with lock:
                seen.append((status, value))
            sent += 1
        session.close()

    workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    return workers, seen


def values_with(seen, status):
    """The values answered with ``status`` (None: not answered), as stored (floats)."""
    return {float(value) for code, value in seen if code == status}


_SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


def scrape(server):
    """GET /metrics parsed: {(name, labels text): value}."""
    with urllib.request.urlopen(server.base + "/metrics", timeout=30) as response:
        return samples_of(response.read().decode())


def samples_of(text):
    """Prometheus exposition text as {(name, labels text): value}."""
    samples = {}
    for line in text.splitlines():
        match = _SAMPLE_RE.match(line)
        if match:
            samples[(match.group(1), match.group(2) or "")] = float(match.group(3))
    return samples
