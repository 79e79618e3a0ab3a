"""JWT bearer tokens: HS256 with JWT_SECRET, RS256/ES256 with the keys of a PEM or JWKS file
(re-read when it changes); the claims name the tenant, the scopes and the subject that is
rate-limited; a token that does not verify is 401 and counts as a failed authentication."""

import base64
import hashlib
import hmac
import json
import os
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from sqlalchemy import select

from app import create_app, shutdown
from app.api import bearer as bearer_module
from app.api.auth import create_key
from app.api.tokens import LEEWAY_SECONDS, TokenVerifier, looks_like_jwt
from app.config import ConfigError, load
from app.core.timeutil import isoformat_z, utcnow
from app.db import get_store
from app.db.migrate import migrate
from app.db.receipts import SUBJECT_SCOPES
from app.db.schema import idempotency_keys
from tests.clients import call
from tests.helpers import ISSUED_KEYS

ISSUER = "https://login.example.test/"
AUDIENCE = "glowing-fiesta"
SECRET = "tests-hs256-secret-of-32-bytes-or-more"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
HS256 = {"JWT_SECRET": SECRET, "JWT_ISSUER": ISSUER, "JWT_AUDIENCE": AUDIENCE}
COUNTER = "/api/metrics/counter"
METRICS = "/api/metrics"


def claims(**changes):
    """A good token's claims with ``changes`` (None: the claim left out)."""
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "tenant": "acme",
        "scope": "read write",
        "exp": int(time.time()) + 600,
    }
    return {name: value for name, value in {**base, **changes}.items() if value is not None}


def hs256(**changes):
    """A token signed with the configured secret."""
    return issued(jwt.encode(claims(**changes), SECRET, algorithm="HS256"))


def signed(private_key, algorithm, kid=None, **changes):
    """A token signed with a private key (``kid`` in its header when given)."""
    headers = {"kid": kid} if kid else None
    return issued(jwt.encode(claims(**changes), private_key, algorithm=algorithm, headers=headers))


def issued(token):
    ISSUED_KEYS.append(token)  # check_log: no token may reach a server's log
    return token


def segment(data):
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hmac_token(secret, kid=None, **changes):
    """An HS256 token made by hand (PyJWT refuses to use a public key as an HMAC secret)."""
    header = {"alg": "HS256", "typ": "JWT", **({"kid": kid} if kid else {})}
    signing_input = f"{segment(header)}.{segment(claims(**changes))}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{segment(signature)}"


def public_pem(private_key):
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def jwks(*entries):
    """A JWKS document of (private key, kid) pairs' public halves."""
    keys = []
    for private_key, kid in entries:
        family = RSAAlgorithm if isinstance(private_key, rsa.RSAPrivateKey) else ECAlgorithm
        keys.append({**family.to_jwk(private_key.public_key(), as_dict=True), "kid": kid})
    return json.dumps({"keys": keys})


def replace_file(path, text):
    """Swap a file's content at once, as a deployment would."""
    staged = path.with_name(path.name + ".new")
    staged.write_text(text)
    os.replace(staged, path)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def add_tenants(app, *names):
    """Create tenants; {name: id}."""
    store = get_store(app)
    return {name: store.create_tenant(name, utcnow(), {}).id for name in names}


def key_in(app, tenant_id, scopes="read,write", rate_limit=None):
    raw, _ = create_key(get_store(app), "tests", rate_limit, scopes, tenant_id)
    ISSUED_KEYS.append(raw)
    return raw


def assert_unauthorized(response):
    assert response.status_code == 401, response.get_data(as_text=True)
    body = response.get_json()
    assert body["success"] is False and body["error"]["code"] == "UNAUTHORIZED"


def metric_names(client, headers):
    response = client.get(METRICS, headers=headers)
    assert response.status_code == 200, response.get_json()
    return [item["name"] for item in response.get_json()["data"]]


def total(client, headers, name):
    start = isoformat_z(utcnow().replace(minute=0, second=0, microsecond=0))
    query = {"name": name, "operation": "sum", "window": "1h", "start": start}
    response = client.get(f"{METRICS}/aggregate", query_string=query, headers=headers)
    assert response.status_code == 200, response.get_json()
    return sum(bucket["value"] for bucket in response.get_json()["data"])


@pytest.fixture
def jwt_app(make_app):
    """An app on the test's backend taking HS256 tokens, with tenants acme and globex."""
    app = make_app(**HS256)
    app.tenant_ids = add_tenants(app, "acme", "globex")
    return app


@pytest.fixture
def sqlite_jwt_app(tmp_path):
    """The same on SQLite alone: for refusals that never reach the database."""
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path}/db", **HS256})
    migrate(get_store(app).write)
    add_tenants(app, "acme")
    yield app
    shutdown(app)


# -- what a good token does


def test_a_good_token_writes_and_reads_its_tenants_metrics(jwt_app):
    client = jwt_app.test_client()
    headers = bearer(hs256())
    assert (
        client.post(COUNTER, json={"name": "page.views", "value": 3}, headers=headers).status_code
        == 201
    )
    assert metric_names(client, headers) == ["page.views"]
    assert total(client, headers, "page.views") == 3
    limits = client.get("/api/limits", headers=headers).get_json()
    assert (limits["tenant"], limits["rate_limit"]) == ("acme", 1000)


def test_a_tenants_token_never_sees_another_tenants_metric_of_the_same_name(jwt_app):
    client = jwt_app.test_client()
    globex = {"X-API-Key": key_in(jwt_app, jwt_app.tenant_ids["globex"])}
    assert (
        client.post(COUNTER, json={"name": "page.views", "value": 5}, headers=globex).status_code
        == 201
    )
    acme = bearer(hs256())
    assert (
        client.post(COUNTER, json={"name": "page.views", "value": 2}, headers=acme).status_code
        == 201
    )
    assert total(client, acme, "page.views") == 2
    assert total(client, globex, "page.views") == 5
    globex_token = bearer(hs256(tenant="globex", sub="bob"))
    assert total(client, globex_token, "page.views") == 5


def test_a_tenant_sent_in_a_body_or_tags_is_never_trusted(jwt_app):
    client = jwt_app.test_client()
    acme = bearer(hs256())
    body = {"name": "sneaky", "tenant": "globex", "tags": {"tenant": "globex"}}
    assert client.post(COUNTER, json=body, headers=acme).status_code == 201
    globex = {"X-API-Key": key_in(jwt_app, jwt_app.tenant_ids["globex"])}
    assert metric_names(client, globex) == []
    assert metric_names(client, acme) == ["sneaky"]


def test_a_bearer_value_that_is_no_jwt_is_still_an_api_key(jwt_app):
    client = jwt_app.test_client()
    key = key_in(jwt_app, jwt_app.tenant_ids["acme"])
    assert client.post(COUNTER, json={"name": "k"}, headers=bearer(key)).status_code == 201
    assert metric_names(client, bearer(hs256())) == ["k"]


def test_a_jwt_in_x_api_key_is_taken_too(jwt_app):
    client = jwt_app.test_client()
    assert client.get(METRICS, headers={"X-API-Key": hs256()}).status_code == 200


def test_with_jwts_off_a_jwt_is_just_a_wrong_key(app):
    assert_unauthorized(app.test_client().get(METRICS, headers=bearer(hs256())))


def test_times_get_thirty_seconds_of_leeway(sqlite_jwt_app):
    client = sqlite_jwt_app.test_client()
    now = int(time.time())
    assert client.get(METRICS, headers=bearer(hs256(exp=now - 10))).status_code == 200
    assert client.get(METRICS, headers=bearer(hs256(nbf=now + 10))).status_code == 200


def test_a_cached_token_still_expires(sqlite_jwt_app):
    client = sqlite_jwt_app.test_client()
    expires = int(time.time()) - LEEWAY_SECONDS + 1  # good for at most one more second
    token = hs256(exp=expires)
    assert client.get(METRICS, headers=bearer(token)).status_code == 200  # now cached
    time.sleep(max(0.0, expires + LEEWAY_SECONDS - time.time()) + 0.05)
    assert_unauthorized(client.get(METRICS, headers=bearer(token)))


# -- refusals: 401 UNAUTHORIZED with the normal error body


def unsigned(**changes):
    return f"{segment({'alg': 'none', 'typ': 'JWT'})}.{segment(claims(**changes))}."


def tampered():
    header, _, signature = hs256().split(".")
    return f"{header}.{segment(claims(tenant='globex', scope='admin'))}.{signature}"


REFUSED = {
    "alg none": lambda: unsigned(),
    "another secret": lambda: jwt.encode(claims(), "another-secret-of-32-bytes-or-more", "HS256"),
    "tampered payload": tampered,
    "expired past the leeway": lambda: hs256(exp=int(time.time()) - LEEWAY_SECONDS - 5),
    "not yet valid past the leeway": lambda: hs256(nbf=int(time.time()) + LEEWAY_SECONDS + 30),
    "wrong issuer": lambda: hs256(iss="https://evil.example.test/"),
    "issuer a prefix of ours": lambda: hs256(iss=ISSUER[:-1]),
    "wrong audience": lambda: hs256(aud="someone-else"),
    "no exp": lambda: hs256(exp=None),
    "no iss": lambda: hs256(iss=None),
    "no aud": lambda: hs256(aud=None),
    "no sub": lambda: hs256(sub=None),
    "empty sub": lambda: hs256(sub=""),
    "no tenant": lambda: hs256(tenant=None),
    "tenant not a name": lambda: hs256(tenant="Not A Name"),
    "an algorithm not configured": lambda: signed(RSA_KEY, "RS256"),
    "exp not a number": lambda: hs256(exp="soon"),
    "sub not a string": lambda: hs256(sub=42),
    "scope not a string": lambda: hs256(scope=["read"]),
    "aud not a string": lambda: hs256(aud=7),
}


@pytest.mark.parametrize("case", REFUSED)
def test_a_token_that_does_not_verify_is_401(sqlite_jwt_app, case):
    response = sqlite_jwt_app.test_client().get(METRICS, headers=bearer(REFUSED[case]()))
    assert_unauthorized(response)
    assert response.get_json()["error"]["message"].startswith("Bearer token refused: ")


def test_an_unknown_tenant_is_401(jwt_app):
    assert_unauthorized(jwt_app.test_client().get(METRICS, headers=bearer(hs256(tenant="initech"))))


# -- scopes


def test_a_token_without_scope_may_do_nothing(jwt_app):
    client = jwt_app.test_client()
    for token in (hs256(scope=None), hs256(scope=""), hs256(scope="openid profile")):
        response = client.get(METRICS, headers=bearer(token))
        assert response.status_code == 403 and response.get_json()["error"]["code"] == "FORBIDDEN"
        assert client.post(COUNTER, json={"name": "x"}, headers=bearer(token)).status_code == 403


def test_a_read_only_token_may_not_write(jwt_app):
    client = jwt_app.test_client()
    headers = bearer(hs256(scope="read openid"))
    assert client.get(METRICS, headers=headers).status_code == 200
    response = client.post(COUNTER, json={"name": "x"}, headers=headers)
    assert response.status_code == 403
    assert response.get_json()["error"]["message"] == "This token may not write (its scopes: read)"


def test_admin_implies_read_and_write(jwt_app):
    client = jwt_app.test_client()
    headers = bearer(hs256(scope="admin"))
    assert client.post(COUNTER, json={"name": "x"}, headers=headers).status_code == 201
    assert metric_names(client, headers) == ["x"]


# -- failed authentication and rate limits


def test_failed_tokens_count_toward_the_address_limit(make_app):
    app = make_app(**HS256, AUTH_FAILURE_LIMIT="3")
    add_tenants(app, "acme")
    client = app.test_client()
    for _ in range(3):
        assert_unauthorized(client.get(METRICS, headers=bearer(hs256(aud="nope"))))
    flooded = client.get(METRICS, headers=bearer(hs256(aud="nope")))
    assert flooded.status_code == 429 and flooded.get_json()["error"]["code"] == "RATE_LIMITED"
    assert client.get(METRICS, headers={"X-API-Key": "gf_" + "A" * 43}).status_code == 429
    assert client.get(METRICS, headers=bearer(hs256())).status_code == 200  # a valid one passes


def test_bad_keys_and_bad_tokens_share_the_address_limit(sqlite_jwt_app):
    sqlite_jwt_app.config["AUTH_FAILURE_LIMIT"] = 2
    client = sqlite_jwt_app.test_client()
    assert_unauthorized(client.get(METRICS, headers={"X-API-Key": "gf_" + "B" * 43}))
    assert_unauthorized(client.get(METRICS, headers=bearer(unsigned())))
    assert client.get(METRICS, headers=bearer(unsigned())).status_code == 429


def test_each_subject_has_the_default_rate_limit(make_app):
    app = make_app(**HS256, METRICS_RATE_LIMIT_DEFAULT="2")
    ids = add_tenants(app, "acme")
    client = app.test_client()
    first, second = bearer(hs256()), bearer(hs256(exp=int(time.time()) + 900))  # same subject
    answers = [client.get(METRICS, headers=h) for h in (first, second, first)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert [a.headers["X-RateLimit-Limit"] for a in answers] == ["2", "2", "2"]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["1", "0", "0"]
    assert answers[2].headers["Retry-After"]
    assert client.get(METRICS, headers=bearer(hs256(sub="bob"))).status_code == 200
    assert client.get(METRICS, headers={"X-API-Key": key_in(app, ids["acme"])}).status_code == 200


# -- Idempotency-Key


def post_once(client, headers, key="order-1", value=4):
    body = {"name": "orders", "value": value}
    return client.post(COUNTER, json=body, headers={**headers, "Idempotency-Key": key})


def test_idempotency_keys_are_per_subject_and_apart_from_api_keys(jwt_app):
    client = jwt_app.test_client()
    alice = bearer(hs256())
    first, again = (
        post_once(client, alice),
        post_once(client, bearer(hs256(exp=int(time.time()) + 900))),
    )
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_data() == first.get_data()
    key = {"X-API-Key": key_in(jwt_app, jwt_app.tenant_ids["acme"])}
    for other in (key, bearer(hs256(sub="bob")), bearer(hs256(tenant="globex"))):
        answer = post_once(client, other)
        assert answer.status_code == 201 and "Idempotent-Replayed" not in answer.headers
    assert total(client, alice, "orders") == 4 * 3  # alice once, the key once, bob once
    with get_store(jwt_app).write.connect() as conn:
        scopes = sorted(conn.scalars(select(idempotency_keys.c.scope_id)))
    assert len(scopes) == 4 and len(set(scopes)) == 4
    assert [scope >= SUBJECT_SCOPES for scope in scopes] == [False, True, True, True]


def test_a_subject_reusing_its_idempotency_key_for_another_request_is_422(jwt_app):
    client = jwt_app.test_client()
    assert post_once(client, bearer(hs256())).status_code == 201
    reused = post_once(client, bearer(hs256()), value=5)
    assert reused.status_code == 422
    assert reused.get_json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"


# -- public keys: PEM, JWKS, rotation


def public_keys_app(make_app, path):
    app = make_app(JWT_PUBLIC_KEYS=str(path), JWT_ISSUER=ISSUER, JWT_AUDIENCE=AUDIENCE)
    add_tenants(app, "acme")
    return app


def test_rs256_with_a_pem_file(make_app, tmp_path):
    path = tmp_path / "key.pem"
    path.write_text(public_pem(RSA_KEY))
    client = public_keys_app(make_app, path).test_client()
    assert client.get(METRICS, headers=bearer(signed(RSA_KEY, "RS256"))).status_code == 200
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert_unauthorized(client.get(METRICS, headers=bearer(signed(other, "RS256"))))
    # Algorithm confusion: the public key's PEM text as an HMAC secret.
    confused = hmac_token(public_pem(RSA_KEY).encode())
    assert_unauthorized(client.get(METRICS, headers=bearer(confused)))
    assert_unauthorized(client.get(METRICS, headers=bearer(hs256())))
    assert_unauthorized(client.get(METRICS, headers=bearer(unsigned())))


def test_es256_with_a_pem_file(make_app, tmp_path):
    path = tmp_path / "key.pem"
    path.write_text(public_pem(EC_KEY))
    client = public_keys_app(make_app, path).test_client()
    assert client.get(METRICS, headers=bearer(signed(EC_KEY, "ES256"))).status_code == 200
    assert_unauthorized(
        client.get(METRICS, headers=bearer(hmac_token(public_pem(EC_KEY).encode())))
    )


def test_a_jwks_key_is_picked_by_kid_and_a_rotation_needs_no_restart(make_app, tmp_path):
    path = tmp_path / "jwks.json"
    path.write_text(jwks((RSA_KEY, "old")))
    app = public_keys_app(make_app, path)
    client = app.test_client()
    old = bearer(signed(RSA_KEY, "RS256", kid="old"))
    assert client.get(METRICS, headers=old).status_code == 200  # now cached
    assert_unauthorized(client.get(METRICS, headers=bearer(signed(RSA_KEY, "RS256", kid="new"))))
    assert_unauthorized(client.get(METRICS, headers=bearer(signed(EC_KEY, "ES256", kid="old"))))
    replace_file(path, jwks((EC_KEY, "new")))
    key_file = bearer_module.get_bearer(app).verifier.key_file
    looked_at = key_file.clock()
    key_file.clock = lambda: looked_at + 1.5  # the file is looked at once a second at most
    assert_unauthorized(client.get(METRICS, headers=old))
    assert (
        client.get(METRICS, headers=bearer(signed(EC_KEY, "ES256", kid="new"))).status_code == 200
    )


def test_a_broken_key_file_keeps_the_keys_read_before(make_app, tmp_path, caplog):
    path = tmp_path / "jwks.json"
    path.write_text(jwks((RSA_KEY, "k1")))
    app = public_keys_app(make_app, path)
    replace_file(path, "{not json")
    key_file = bearer_module.get_bearer(app).verifier.key_file
    looked_at = key_file.clock()
    key_file.clock = lambda: looked_at + 1.5
    response = app.test_client().get(METRICS, headers=bearer(signed(RSA_KEY, "RS256", kid="k1")))
    assert response.status_code == 200
    assert "not re-read" in caplog.text


def test_rotation_through_a_real_server(app, database_url, serve, tmp_path):
    add_tenants(app, "acme")
    path = tmp_path / "jwks.json"
    path.write_text(jwks((RSA_KEY, "k1")))
    env = {"JWT_PUBLIC_KEYS": str(path), "JWT_ISSUER": ISSUER, "JWT_AUDIENCE": AUDIENCE}
    server = serve(DATABASE_URL=database_url, LOG_LEVEL="INFO", **env)
    old = bearer(signed(RSA_KEY, "RS256", kid="k1"))
    status, headers, _ = call(server, "POST", COUNTER, {"name": "served"}, old)
    assert (status, headers["X-RateLimit-Limit"]) == (201, "1000")
    replace_file(path, jwks((EC_KEY, "k2")))
    time.sleep(1.2)
    assert call(server, "GET", METRICS, headers=old)[0] == 401
    new = bearer(signed(EC_KEY, "ES256", kid="k2"))
    status, _, body = call(server, "GET", METRICS, headers=new)
    assert (status, [m["name"] for m in body["data"]]) == (200, ["served"])
    records = [json.loads(line) for line in server.log_lines()]
    served = [r for r in records if r.get("route") == METRICS and r.get("status") == 200]
    assert [r["key"] for r in served] == ["jwt:alice"]


# -- the verifier on its own


def test_looks_like_jwt():
    assert looks_like_jwt(hs256()) and looks_like_jwt(unsigned())
    for value in (None, "", "gf_" + "A" * 43, "a.b.c", "x.y", "e30.e30.x", "{}.{}.{}"):
        assert not looks_like_jwt(value), value


def test_the_verified_cache_is_bounded():
    verifier = TokenVerifier(ISSUER, AUDIENCE, SECRET)
    verifier.max_entries = 10
    for n in range(25):
        verifier.verify(hs256(sub=f"user-{n}"))
        assert len(verifier) <= 10


# -- settings: a bad one stops start-up naming it


def key_file(tmp_path, text):
    path = tmp_path / "keys"
    path.write_text(text)
    return str(path)


def test_the_settings_fail_at_start_naming_the_variable(monkeypatch, capsys, tmp_path):
    both = {**HS256, "JWT_PUBLIC_KEYS": key_file(tmp_path, public_pem(RSA_KEY))}
    cases = [
        ({"JWT_SECRET": "too short", "JWT_ISSUER": ISSUER, "JWT_AUDIENCE": AUDIENCE}, "JWT_SECRET"),
        ({"JWT_SECRET": SECRET, "JWT_AUDIENCE": AUDIENCE}, "JWT_ISSUER"),
        ({"JWT_SECRET": SECRET, "JWT_ISSUER": ISSUER}, "JWT_AUDIENCE"),
        ({"JWT_ISSUER": ISSUER, "JWT_AUDIENCE": AUDIENCE}, "JWT_ISSUER"),
        (both, "JWT_SECRET and JWT_PUBLIC_KEYS"),
        ({"JWT_PUBLIC_KEYS": str(tmp_path / "missing"), "JWT_ISSUER": ISSUER}, "JWT_PUBLIC_KEYS"),
    ]
    for env, named in cases:
        for name in (*HS256, "JWT_PUBLIC_KEYS"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        with pytest.raises(SystemExit) as exited:
            create_app()
        message = capsys.readouterr().err.strip().splitlines()
        assert exited.value.code == 2 and len(message) == 1 and named in message[0], message


def oct_key():
    return json.dumps({"keys": [{"kty": "oct", "k": segment(SECRET.encode()), "kid": "s"}]})


def small_rsa():
    return public_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))


@pytest.mark.parametrize(
    "text, reason",
    [
        (lambda: "not a key", "neither a JWKS document nor a PEM public key"),
        (lambda: '{"keys": 3}', "not a JWKS document"),
        (oct_key, "no RS256 or ES256 signing key"),
        (small_rsa, "1024 bits"),
        (lambda: public_pem(ec.generate_private_key(ec.SECP384R1())), "secp384r1"),
        (lambda: jwks((RSA_KEY, "same"), (EC_KEY, "same")), "two keys have the kid 'same'"),
        (lambda: jwks((RSA_KEY, None), (EC_KEY, "b")), "needs a kid on each"),
    ],
)
def test_a_key_file_without_a_usable_key_is_refused(monkeypatch, tmp_path, text, reason):
    monkeypatch.setenv("JWT_PUBLIC_KEYS", key_file(tmp_path, text()))
    monkeypatch.setenv("JWT_ISSUER", ISSUER)
    monkeypatch.setenv("JWT_AUDIENCE", AUDIENCE)
    with pytest.raises(ConfigError, match="JWT_PUBLIC_KEYS") as refused:
        load()
    assert reason in str(refused.value)


def test_a_jwks_ignores_keys_of_other_uses_and_algorithms(make_app, tmp_path):
    document = json.loads(jwks((RSA_KEY, "sign"), (EC_KEY, "encrypt")))
    document["keys"][1]["use"] = "enc"
    document["keys"].append({"kty": "oct", "k": segment(SECRET.encode()), "kid": "secret"})
    app = public_keys_app(make_app, key_file(tmp_path, json.dumps(document)))
    client = app.test_client()
    assert (
        client.get(METRICS, headers=bearer(signed(RSA_KEY, "RS256", kid="sign"))).status_code == 200
    )
    for token in (signed(EC_KEY, "ES256", kid="encrypt"), hmac_token(SECRET.encode(), "secret")):
        assert_unauthorized(client.get(METRICS, headers=bearer(token)))


# -- keys over HTTP


def test_an_admin_token_manages_its_tenants_keys(jwt_app, caplog):
    client = jwt_app.test_client()
    admin = bearer(hs256(scope="admin"))
    created = client.post("/api/keys", json={"name": "CI", "scope": "write"}, headers=admin)
    assert created.status_code == 201, created.get_json()
    ISSUED_KEYS.append(created.get_json()["key"])
    assert (
        "api key created: key" in caplog.text and "of tenant acme by token jwt:alice" in caplog.text
    )
    listed = client.get("/api/keys", headers=admin).get_json()["data"]
    assert [key["name"] for key in listed] == ["CI"]
    globex = bearer(hs256(scope="admin", tenant="globex"))
    assert client.get("/api/keys", headers=globex).get_json()["data"] == []
    key_id = created.get_json()["id"]
    assert client.delete(f"/api/keys/{key_id}", headers=globex).status_code == 404
    assert client.delete(f"/api/keys/{key_id}", headers=admin).status_code == 200
    assert client.get("/api/keys", headers=bearer(hs256())).status_code == 403
