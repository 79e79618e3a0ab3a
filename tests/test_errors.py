"""Every error path answers with the JSON envelope, never HTML or a trace."""

import pytest

from app import create_app
from tests.conftest import free_port


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
    response = client.delete("/api/metrics/counter", headers=auth)
    assert_envelope(response, 405, "METHOD_NOT_ALLOWED")
    assert "POST" in response.headers["Allow"]


def test_oversized_body_is_json_413(make_app):
    app = make_app(MAX_CONTENT_LENGTH=100)
    from tests.conftest import new_key

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


@pytest.mark.parametrize("path", ["/api/metrics/counter", "/api/metrics/batch"])
def test_database_unreachable_is_503_with_retry_after(path):
    url = f"mysql+pymysql://root@127.0.0.1:{free_port()}/nothing"
    app = create_app({"TESTING": True, "DATABASE_URL": url})
    headers = {"X-API-Key": "gf_" + "C" * 43}
    response = app.test_client().post(path, json={"name": "x"}, headers=headers)
    assert_envelope(response, 503, "SERVICE_UNAVAILABLE")
    assert int(response.headers["Retry-After"]) > 0


def test_ready_reports_an_unreachable_database():
    url = f"mysql+pymysql://root@127.0.0.1:{free_port()}/nothing"
    app = create_app({"TESTING": True, "DATABASE_URL": url})
    response = app.test_client().get("/ready")
    assert_envelope(response, 503, "SERVICE_UNAVAILABLE")
    assert response.get_json()["error"]["details"]["database"].startswith("error")


def test_ready_reports_an_unreachable_redis(make_app):
    app = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    response = app.test_client().get("/ready")
    assert response.status_code == 503
    details = response.get_json()["error"]["details"]
    assert details["database"] == "ok" and details["redis"].startswith("error")


def test_ready_with_everything_up(make_app, redis_url):
    response = make_app(REDIS_URL=redis_url).test_client().get("/ready")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "redis": "ok"}


def test_every_response_has_a_request_id(client):
    assert len(client.get("/health").headers["X-Request-ID"]) == 32
    echoed = client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["X-Request-ID"] == "abc-123"
