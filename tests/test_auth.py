"""API keys: both headers, refusals, hashing at rest, revocation within 5 s."""

import hashlib

import pytest
from sqlalchemy import text

from app.api import auth as auth_module
from app.db import get_store
from tests.helpers import new_key

COUNTER = "/api/metrics/counter"


def post_counter(client, headers):
    return client.post(COUNTER, json={"name": "auth.test"}, headers=headers)


def assert_unauthorized(response):
    assert response.status_code == 401
    body = response.get_json()
    assert body["success"] is False
    assert body["error"]["code"] == "UNAUTHORIZED"


def test_x_api_key_header_authenticates(client, api_key):
    assert post_counter(client, {"X-API-Key": api_key}).status_code == 201


def test_bearer_token_authenticates(client, api_key):
    assert post_counter(client, {"Authorization": f"Bearer {api_key}"}).status_code == 201


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": ""},
        {"X-API-Key": "gf_" + "A" * 43},
        {"X-API-Key": "short"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
    ],
)
def test_missing_or_wrong_keys_are_refused(client, api_key, headers):
    assert_unauthorized(post_counter(client, headers))


def test_a_refused_request_writes_nothing(client, app):
    assert_unauthorized(post_counter(client, {"X-API-Key": "gf_" + "B" * 43}))
    with get_store(app).write.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM metrics")).scalar() == 0


def test_operational_routes_need_no_key(client):
    assert client.get("/health").status_code == 200
    assert client.get("/ready").status_code == 200


def test_keys_are_stored_only_as_sha256(app, api_key):
    with get_store(app).write.connect() as conn:
        stored = conn.execute(text("SELECT key_hash, prefix FROM api_keys")).one()
    assert stored[0] == hashlib.sha256(api_key.encode()).hexdigest()
    assert api_key.startswith(stored[1]) and len(stored[1]) < 16


def test_use_is_recorded(client, app, api_key):
    post_counter(client, {"X-API-Key": api_key})
    with get_store(app).write.connect() as conn:
        assert conn.execute(text("SELECT last_used_at FROM api_keys")).scalar() is not None


def test_revoked_key_stops_working_within_five_seconds(client, app, runner, api_key):
    headers = {"X-API-Key": api_key}
    assert post_counter(client, headers).status_code == 201
    result = runner.invoke(args=["keys", "revoke", api_key[:11]])
    assert result.exit_code == 0, result.output
    cache = app.extensions[auth_module.EXTENSION]
    started = cache.clock()
    cache.clock = lambda: started + 5.0
    assert_unauthorized(post_counter(client, headers))


def test_revocation_reaches_another_server_within_five_seconds(make_app):
    first, second = make_app(), make_app()
    headers = {"X-API-Key": new_key(first)}
    assert post_counter(second.test_client(), headers).status_code == 201  # now cached there
    result = first.test_cli_runner().invoke(args=["keys", "revoke", headers["X-API-Key"][:11]])
    assert result.exit_code == 0, result.output
    cache = second.extensions[auth_module.EXTENSION]
    started = cache.clock()
    cache.clock = lambda: started + 5.0
    assert_unauthorized(post_counter(second.test_client(), headers))


def test_a_flood_of_bad_keys_does_not_evict_good_ones(app, client, api_key):
    app.extensions[auth_module.EXTENSION] = auth_module.KeyCache(max_entries=3)
    headers = {"X-API-Key": api_key}
    assert post_counter(client, headers).status_code == 201
    for n in range(5):
        assert_unauthorized(post_counter(client, {"X-API-Key": f"gf_{n:043d}"}))
    hit, cached = app.extensions[auth_module.EXTENSION].get(auth_module.hash_key(api_key))
    assert hit and cached is not None
