"""The holes a hostile probe found, closed: short bodies, huge sums, the 401 flood, headers,
CORS, key scopes, an empty X-API-Key header."""

import json
import socket
from datetime import timedelta

import pytest

from app.api import auth as auth_module
from app.core.timeutil import isoformat_z, utcnow
from app.db import get_store
from tests.helpers import new_key, stored_metric, stored_points

COUNTER = "/api/metrics/counter"


def short_post(server, path, body, declared, key):
    """POST ``body`` declaring ``declared`` bytes, then stop sending (a client cut off)."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {declared}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head.encode() + body)
        sock.shutdown(socket.SHUT_WR)
        reply = b"".join(iter(lambda: sock.recv(65536), b""))
    status = int(reply.split(b" ", 2)[1])
    return status, json.loads(reply.partition(b"\r\n\r\n")[2])


@pytest.mark.parametrize(
    "path, body",
    [
        ("/api/metrics/value", b"name=trunc.demo&value=12"),
        ("/api/metrics/counter", b"name=trunc.demo&value=12"),
        ("/api/metrics/batch", b'{"metrics": [{"name": "trunc.demo", "type": "counter"}]}'),
    ],
)
def test_a_body_shorter_than_its_content_length_is_refused(app, database_url, serve, path, body):
    server = serve(DATABASE_URL=database_url)
    status, answer = short_post(server, path, body, len(body) + 16, new_key(app))
    assert (status, answer["error"]["code"]) == (400, "VALIDATION_ERROR")
    assert stored_metric(app, "trunc.demo") is None


def sum_of(client, auth, name):
    start = isoformat_z(utcnow() - timedelta(hours=1))
    query = {"name": name, "operation": "sum", "window": "1d", "start": start}
    response = client.get("/api/metrics/aggregate", query_string=query, headers=auth)
    return sum(p["value"] for p in response.get_json()["data"]), response.get_data(as_text=True)


@pytest.mark.parametrize("values, total", [([1e16, 1], 10**16 + 1), ([2**53, 1], 2**53 + 1)])
def test_whole_sums_past_two_to_the_53_are_exact_integers(client, auth, values, total):
    for value in values:
        client.post(COUNTER, json={"name": "huge", "value": value}, headers=auth)
    computed, text = sum_of(client, auth, "huge")
    assert computed == total and f'"value":{total}' in text.replace(" ", "")


def test_a_flood_of_bad_keys_gets_429_before_any_lookup(make_app, monkeypatch):
    app = make_app(AUTH_FAILURE_LIMIT=5)
    good = new_key(app)
    client = app.test_client()
    lookups = []
    real_lookup = auth_module._lookup
    monkeypatch.setattr(
        auth_module, "_lookup", lambda db, h: lookups.append(h) or real_lookup(db, h)
    )
    statuses = [
        client.post(COUNTER, json={"name": "x"}, headers={"X-API-Key": f"gf_{n:043d}"}).status_code
        for n in range(8)
    ]
    assert statuses == [401] * 5 + [429] * 3
    assert len(lookups) == 5  # refused before the lookup once over the limit
    missing = client.post(COUNTER, json={"name": "x"})
    assert missing.status_code == 429 and missing.get_json()["error"]["code"] == "RATE_LIMITED"
    assert int(missing.headers["Retry-After"]) > 0
    app.extensions[auth_module.EXTENSION] = auth_module.KeyCache()  # nothing cached any more
    assert client.post(COUNTER, json={"name": "x"}, headers={"X-API-Key": good}).status_code == 201


def test_behind_a_trusted_proxy_the_real_client_address_counts(make_app):
    app = make_app(AUTH_FAILURE_LIMIT=2, TRUSTED_PROXY_HOPS=1)
    client = app.test_client()

    def bad(address):
        headers = {"X-API-Key": "gf_" + "0" * 43, "X-Forwarded-For": address}
        return client.post(COUNTER, json={"name": "x"}, headers=headers).status_code

    assert [bad("203.0.113.7") for _ in range(3)] == [401, 401, 429]
    assert bad("198.51.100.9") == 401  # another client behind the same proxy


def test_without_trusted_proxies_forwarded_for_is_ignored(make_app):
    app = make_app(AUTH_FAILURE_LIMIT=2)
    client = app.test_client()
    codes = [
        client.post(
            COUNTER, json={"name": "x"}, headers={"X-Forwarded-For": f"10.0.0.{n}"}
        ).status_code
        for n in range(3)
    ]
    assert codes == [401, 401, 429]


def test_api_responses_carry_nosniff_and_no_store(client, auth):
    for response in (
        client.post(COUNTER, json={"name": "h"}, headers=auth),
        client.get("/api/metrics", headers=auth),
        client.get("/api/metrics/missing", headers=auth),
        client.get("/api/metrics"),
    ):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"
    assert client.get("/health").headers["X-Content-Type-Options"] == "nosniff"


def test_options_needs_no_key_and_answers_204_with_allow(client):
    response = client.options("/api/metrics/counter")
    assert response.status_code == 204 and response.get_data() == b""
    assert set(response.headers["Allow"].split(", ")) >= {"POST", "OPTIONS"}
    assert "Access-Control-Allow-Origin" not in response.headers
    assert client.options("/api/nothing/here").status_code == 404


def test_cors_only_for_the_configured_origins(make_app):
    app = make_app(CORS_ORIGINS=("https://dash.example.com",))
    client, key = app.test_client(), new_key(app)
    origin = {"Origin": "https://dash.example.com"}
    preflight = client.options(COUNTER, headers={**origin, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://dash.example.com"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "X-API-Key" in preflight.headers["Access-Control-Allow-Headers"]
    answer = client.post(COUNTER, json={"name": "c"}, headers={**origin, "X-API-Key": key})
    assert answer.headers["Access-Control-Allow-Origin"] == "https://dash.example.com"
    assert "X-RateLimit-Remaining" in answer.headers["Access-Control-Expose-Headers"]
    assert "Origin" in answer.headers["Vary"]
    stranger = client.options(COUNTER, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in stranger.headers


def test_an_empty_x_api_key_header_does_not_hide_a_bearer_token(client, app, api_key):
    headers = {"X-API-Key": "", "Authorization": f"Bearer {api_key}"}
    assert client.post(COUNTER, json={"name": "bearer"}, headers=headers).status_code == 201
    assert len(stored_points(app, "bearer")) == 1


def key_with(app, scopes):
    raw, _ = auth_module.create_key(get_store(app), "scoped", None, scopes)
    return {"X-API-Key": raw}


def test_scopes_decide_what_a_key_may_do(client, app):
    reader, writer, admin = (key_with(app, s) for s in ("read", "write", "admin"))
    assert client.post(COUNTER, json={"name": "s"}, headers=writer).status_code == 201
    refused = client.post(COUNTER, json={"name": "s"}, headers=reader)
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "FORBIDDEN"
    assert client.delete("/api/metrics/s", headers=reader).status_code == 403
    assert client.get("/api/metrics/s", headers=reader).status_code == 200
    assert client.get("/api/metrics", headers=reader).status_code == 200
    assert client.get("/api/metrics/s", headers=writer).status_code == 403
    assert client.get("/api/metrics", headers=writer).status_code == 403
    assert client.get("/api/metrics/s", headers=admin).status_code == 200
    assert client.post(COUNTER, json={"name": "s"}, headers=admin).status_code == 201
    assert len(stored_points(app, "s")) == 2


def test_keys_update_changes_a_scope_for_every_server(make_app):
    first, second = make_app(), make_app()
    raw = new_key(first)
    headers = {"X-API-Key": raw}
    assert (
        second.test_client().post(COUNTER, json={"name": "u"}, headers=headers).status_code == 201
    )
    result = first.test_cli_runner().invoke(
        args=["keys", "update", raw[:11], "--scope", "read", "--rate", "7"]
    )
    assert result.exit_code == 0, result.output
    cache = second.extensions[auth_module.EXTENSION]
    started = cache.clock()
    cache.clock = lambda: started + 5.0  # the cached lookup has expired
    answer = second.test_client().post(COUNTER, json={"name": "u"}, headers=headers)
    assert answer.status_code == 403 and answer.headers["X-RateLimit-Limit"] == "7"
    listing = first.test_cli_runner().invoke(args=["keys", "list"])
    assert "\tread\t7\t" in listing.output
