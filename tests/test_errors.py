"""Every error path answers with the JSON envelope, never HTML or a trace."""

import time

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app import create_app, shutdown
from app.db import get_store
from tests.harness import TcpProxy, free_port
from tests.helpers import new_key


def assert_envelope(response, status, code):
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert "Traceback" not in response.get_data(as_text=True)


def test_unknown_route_is_json_404(client, auth):
    assert_envelope(client.get("/nowhere"), 404, "NOT_FOUND")
    assert_envelope(client.get("/api/nowhere", headers=auth), 404, "NOT_FOUND")


def test_wrong_method_is_json_405(client, auth):
    response = client.put("/api/metrics/counter", headers=auth)
    assert_envelope(response, 405, "METHOD_NOT_ALLOWED")
    assert "POST" in response.headers["Allow"]


def test_oversized_body_is_json_413(make_app):
    app = make_app(MAX_CONTENT_LENGTH=100)
    from tests.helpers import new_key

    headers = {"X-API-Key": new_key(app), "Content-Type": "application/json"}
    body = '{"name": "big", "value": 1, "pad": "' + "x" * 200 + '"}'
    response = app.test_client().post("/api/metrics/counter", data=body, headers=headers)
    assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")


def test_unexpected_exception_is_json_500_without_trace(app, client):
    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    response = client.get("/boom")
    assert_envelope(response, 500, "INTERNAL_ERROR")
    assert "secret internals" not in response.get_data(as_text=True)


@pytest.fixture
def outage(mysql_url):
    """An app whose MariaDB connection runs through a proxy the test can cut and restore."""
    url = make_url(mysql_url)
    proxy = TcpProxy(url.host, url.port or 3306).restore()
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": url.set(port=proxy.port).render_as_string(hide_password=False),
        }
    )
    yield app, proxy
    shutdown(app)
    proxy.cut()


def test_database_outage_is_503_then_recovers(outage):
    app, proxy = outage
    client = app.test_client()
    headers = {"X-API-Key": new_key(app)}
    batch = {"metrics": [{"name": "outage", "type": "counter"}]}
    query = {"name": "outage", "window": "1h"}
    assert (
        client.post("/api/metrics/counter", json={"name": "outage"}, headers=headers).status_code
        == 201
    )
    proxy.cut()  # the key and the metric are cached: the failure comes from the write itself
    for response in (
        client.post("/api/metrics/counter", json={"name": "outage"}, headers=headers),
        client.post("/api/metrics/batch", json=batch, headers=headers),
        client.get("/api/metrics/aggregate", query_string=query, headers=headers),
        client.get("/ready"),
    ):
        assert_envelope(response, 503, "SERVICE_UNAVAILABLE")
        assert response.headers["Retry-After"] == "5"  # the outage's, not the rate window's
    proxy.restore()
    assert (
        client.post("/api/metrics/counter", json={"name": "outage"}, headers=headers).status_code
        == 201
    )
    counts = client.get(
        "/api/metrics/aggregate", query_string={**query, "operation": "count"}, headers=headers
    )
    assert sum(p["value"] for p in counts.get_json()["data"]) == 2


def test_unreachable_database_at_start_is_503(make_app):
    app = make_app(DATABASE_URL=f"mysql+pymysql://root@127.0.0.1:{free_port()}/nothing")
    response = app.test_client().post(
        "/api/metrics/counter", json={"name": "x"}, headers={"X-API-Key": "gf_" + "C" * 43}
    )
    assert_envelope(response, 503, "SERVICE_UNAVAILABLE")
    ready = app.test_client().get("/ready")
    assert_envelope(ready, 503, "SERVICE_UNAVAILABLE")
    assert ready.get_json()["error"]["details"]["database"].startswith("error")


def test_a_database_bug_is_500_not_503(app, client, auth):
    with get_store(app).write.begin() as conn:
        conn.execute(text("ALTER TABLE metric_points RENAME TO metric_points_away"))
    try:
        response = client.post("/api/metrics/counter", json={"name": "bug"}, headers=auth)
    finally:
        with get_store(app).write.begin() as conn:
            conn.execute(text("ALTER TABLE metric_points_away RENAME TO metric_points"))
    assert_envelope(response, 500, "INTERNAL_ERROR")


def test_ready_reports_an_unreachable_redis(make_app):
    app = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    response = app.test_client().get("/ready")
    assert response.status_code == 503
    details = response.get_json()["error"]["details"]
    assert details["database"] == "ok" and details["redis"].startswith("error")


def test_ready_with_everything_up(make_app, redis_url):
    response = make_app(REDIS_URL=redis_url).test_client().get("/ready")
    assert response.status_code == 200
    body = response.get_json()
    assert body["checks"] == {"database": "ok", "redis": "ok"}
    assert set(body["latency_ms"]) == {"database", "redis"}
    assert all(0 <= ms < 10_000 for ms in body["latency_ms"].values())


def test_every_response_has_a_request_id(client):
    assert len(client.get("/health").headers["X-Request-ID"]) == 32
    echoed = client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["X-Request-ID"] == "abc-123"


def test_a_hung_database_is_503_within_seconds_for_writes_and_ready(mysql_url):
    """A database that accepts connections and answers nothing: writes give up at
    WRITER_WAIT_SECONDS, /ready within about two seconds, never the driver's timeout."""
    url = make_url(mysql_url)
    proxy = TcpProxy(url.host, url.port or 3306).restore()
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": url.set(port=proxy.port).render_as_string(hide_password=False),
            "WRITER_WAIT_SECONDS": 1,
        }
    )
    client, headers = app.test_client(), {"X-API-Key": new_key(app)}
    try:
        assert (
            client.post("/api/metrics/counter", json={"name": "hung"}, headers=headers).status_code
            == 201
        )
        proxy.hang()
        started = time.monotonic()
        write = client.post("/api/metrics/counter", json={"name": "hung"}, headers=headers)
        assert_envelope(write, 503, "SERVICE_UNAVAILABLE")
        assert time.monotonic() - started < 4
        started = time.monotonic()
        ready = client.get("/ready")
        assert_envelope(ready, 503, "SERVICE_UNAVAILABLE")
        assert time.monotonic() - started < 3
        assert ready.get_json()["error"]["details"]["database"].startswith("error")
    finally:
        proxy.cut()
        shutdown(app)


@pytest.mark.parametrize(
    "policy, remote, shown",
    [
        ("loopback", "127.0.0.1", True),
        ("loopback", "10.1.2.3", False),
        ("always", "10.1.2.3", True),
        ("never", "127.0.0.1", False),
    ],
)
def test_ready_shows_its_detail_only_where_ready_detail_allows(make_app, policy, remote, shown):
    app = make_app(READY_DETAIL=policy)
    client = app.test_client()
    up = client.get("/ready", environ_base={"REMOTE_ADDR": remote}).get_json()
    assert up["status"] == "ready" and ("checks" in up) == shown
    down = make_app(READY_DETAIL=policy, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    refused = down.test_client().get("/ready", environ_base={"REMOTE_ADDR": remote})
    assert_envelope(refused, 503, "SERVICE_UNAVAILABLE")
    assert ("details" in refused.get_json()["error"]) == shown


def test_ready_probes_at_most_once_a_second(make_app, monkeypatch):
    app = make_app()
    store = get_store(app)
    probes, real_ping = [], store.ping
    monkeypatch.setattr(store, "ping", lambda **kw: probes.append(real_ping(**kw)))
    client = app.test_client()
    for _ in range(20):
        assert client.get("/ready").status_code == 200
    assert len(probes) == 1
