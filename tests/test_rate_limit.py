"""Per-key limits: headers on every response, 429 with Retry-After, shared through Redis."""

import pytest

from tests.harness import free_port
from tests.helpers import new_key

COUNTER = "/api/metrics/counter"


@pytest.fixture(params=["memory", "redis"])
def limited_app(request, make_app):
    """An app counting limits in process memory, or in the test Redis db."""
    if request.param == "memory":
        return make_app()
    return make_app(REDIS_URL=request.getfixturevalue("redis_url"))


def hit(app, key):
    return app.test_client().post(COUNTER, json={"name": "limited"}, headers={"X-API-Key": key})


def test_every_api_response_carries_the_limit_headers(limited_app):
    key = new_key(limited_app, rate_limit=5)
    response = hit(limited_app, key)
    assert response.headers["X-RateLimit-Limit"] == "5"
    assert response.headers["X-RateLimit-Remaining"] == "4"
    assert int(response.headers["X-RateLimit-Reset"]) > 0
    bad = limited_app.test_client().post(COUNTER, data="{", headers={"X-API-Key": key})
    assert bad.status_code == 400
    assert bad.headers["X-RateLimit-Remaining"] == "3"


def test_over_the_limit_is_429_with_retry_after(limited_app):
    key = new_key(limited_app, rate_limit=3)
    assert [hit(limited_app, key).status_code for _ in range(3)] == [201, 201, 201]
    response = hit(limited_app, key)
    assert response.status_code == 429
    assert response.get_json()["error"]["code"] == "RATE_LIMITED"
    assert 0 < int(response.headers["Retry-After"]) <= 60
    assert response.headers["X-RateLimit-Remaining"] == "0"


def test_keys_are_limited_separately(limited_app):
    first, second = new_key(limited_app, rate_limit=1), new_key(limited_app, rate_limit=1)
    assert hit(limited_app, first).status_code == 201
    assert hit(limited_app, first).status_code == 429
    assert hit(limited_app, second).status_code == 201


def test_default_limit_comes_from_configuration(make_app):
    app = make_app(METRICS_RATE_LIMIT_DEFAULT=2)
    key = new_key(app)
    assert [hit(app, key).status_code for _ in range(3)] == [201, 201, 429]


def test_limit_is_shared_by_servers_through_redis(make_app, redis_url):
    first, second = make_app(REDIS_URL=redis_url), make_app(REDIS_URL=redis_url)
    key = new_key(first, rate_limit=2)
    assert hit(first, key).status_code == 201
    assert hit(second, key).status_code == 201
    assert hit(first, key).status_code == 429


def test_redis_down_falls_back_to_memory_and_keeps_answering(make_app):
    app = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    key = new_key(app, rate_limit=2)
    assert [hit(app, key).status_code for _ in range(3)] == [201, 201, 429]


def test_unmatched_api_routes_are_counted_and_carry_the_headers(limited_app):
    key = new_key(limited_app, rate_limit=5)
    client = limited_app.test_client()
    headers = {"X-API-Key": key}
    missing = client.get("/api/nope", headers=headers)
    wrong_method = client.put("/api/metrics/counter", headers=headers)
    assert (missing.status_code, wrong_method.status_code) == (404, 405)
    assert missing.headers["X-RateLimit-Remaining"] == "4"
    assert wrong_method.headers["X-RateLimit-Remaining"] == "3"


def test_retry_after_is_sent_only_when_refused(limited_app):
    key = new_key(limited_app, rate_limit=1)
    assert "Retry-After" not in hit(limited_app, key).headers
    assert "Retry-After" in hit(limited_app, key).headers
