"""API keys: format, hashing, scopes, a short per-process cache of lookups, the request check
(which hands JWT bearer tokens to ``app.api.bearer``), and the limit on failed authentication
per client address."""

import functools
import hashlib
import random
import re
import secrets
import threading
import time
from datetime import timedelta

from cachetools import TLRUCache
from flask import current_app, g, request

from app.api.bearer import get_bearer
from app.api.bearer import init_app as init_bearer
from app.api.errors import ApiError
from app.api.limits import get_limits, rate_limited
from app.api.principals import DEFAULT_SCOPES, ApiKey
from app.api.tokens import TokenError, looks_like_jwt
from app.core.tenants import DEFAULT_TENANT_ID, Tenant
from app.core.timeutil import utcnow
from app.db import get_store

KEY_PREFIX = "gf_"
KEY_RE = re.compile(r"^gf_[A-Za-z0-9_-]{43}\Z")
DISPLAY_PREFIX_LENGTH = 11
# Revocation must reach every server within 5 s: entries live 3.5–4.5 s.
CACHE_TTL_SECONDS = 4.0
CACHE_MAX_ENTRIES = 10_000
TOUCH_EVERY = timedelta(seconds=60)
EXTENSION = "glowing_fiesta.keys"

SCOPE_CHOICES = {  # what `--scope` / SCOPE= accepts → what is stored
    "read": "read",
    "write": "write",
    "read,write": "read,write",
    "admin": "admin",
}


def generate_key():
    """A new raw key: ``gf_`` and 43 URL-safe characters (256 random bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(raw):
    """SHA-256 hex of a raw key — the only form a key is stored in."""
    return hashlib.sha256(raw.encode("ascii")).hexdigest()


def display_prefix(raw):
    """The short, loggable start of a key."""
    return raw[:DISPLAY_PREFIX_LENGTH]


def create_key(store, name, rate_limit=None, scopes=DEFAULT_SCOPES, tenant_id=DEFAULT_TENANT_ID):
    """Store a new key in a tenant and return ``(raw_key, id)``; the raw key is never stored."""
    raw = generate_key()
    key_id = store.create_key(
        tenant_id, name, hash_key(raw), display_prefix(raw), rate_limit, scopes, utcnow()
    )
    return raw, key_id


def replace_key(store, row):
    """Revoke a key and create its replacement (same tenant, name, limit and scopes) in one
    step; ``(raw_key, id)`` of the new one."""
    raw = generate_key()
    return raw, store.replace_key(row, hash_key(raw), display_prefix(raw), utcnow())


def presented_key():
    """The key from ``X-API-Key`` or ``Authorization: Bearer`` (an empty header counts as
    absent), or None."""
    raw = request.headers.get("X-API-Key", "").strip()
    if not raw:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            raw = value.strip()
    return raw or None


def _expiry(_key, _value, now):
    return now + CACHE_TTL_SECONDS * random.uniform(0.875, 1.125)


class KeyCache:
    """hash → ApiKey (or None for a known-bad key) for a few seconds.

    Good and bad keys live in separate caches of bounded size, so a flood of random keys
    cannot push the good ones out; and the hashes of every active key, reloaded at most every
    few seconds, tell a valid key from a guess without a lookup each (see ``authenticate``).
    """

    def __init__(self, max_entries=CACHE_MAX_ENTRIES, clock=time.monotonic):
        self.clock = clock
        self._good = TLRUCache(max_entries, _expiry, timer=lambda: self.clock())
        self._bad = TLRUCache(max_entries, _expiry, timer=lambda: self.clock())
        self._active = (float("-inf"), frozenset())
        self._lock = threading.Lock()

    def get(self, key_hash):
        """(hit, value): value is the cached ApiKey or None for a known-bad key."""
        with self._lock:
            for cache in (self._good, self._bad):
                if key_hash in cache:
                    return True, cache[key_hash]
        return False, None

    def put(self, key_hash, value):
        """Cache a lookup result."""
        with self._lock:
            (self._good if value is not None else self._bad)[key_hash] = value

    def is_active(self, key_hash, load):
        """Whether ``key_hash`` is an active key's, from a set reloaded by ``load()`` when older
        than the cache's lifetime."""
        loaded_at, hashes = self._active
        if self.clock() - loaded_at > CACHE_TTL_SECONDS:
            hashes = frozenset(load())
            self._active = (self.clock(), hashes)
        return key_hash in hashes


def _lookup(store, key_hash):
    row = store.active_key(key_hash)
    if row is None:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > TOUCH_EVERY:
        store.touch_key(row.id, now)
    tenant = Tenant(
        row.tenant_id, row.tenant, row.max_metrics, row.max_series, row.points_per_minute
    )
    return ApiKey(row.id, row.name, row.prefix, row.rate_limit, row.scopes, tenant)


def _cache():
    return current_app.extensions[EXTENSION]


def well_formed(raw):
    """Whether ``raw`` (from a header, or any JSON value a StatHat body holds) looks like a key."""
    return isinstance(raw, str) and KEY_RE.match(raw) is not None


def cached_key(raw):
    """(known, ApiKey or None) for a raw key from this process's cache alone."""
    if not well_formed(raw):
        return True, None
    return _cache().get(hash_key(raw))


def resolve_key(raw):
    """The active ApiKey for a raw key, or None; cached for a few seconds per process."""
    known, value = cached_key(raw)
    if not known:
        key_hash = hash_key(raw)
        value = _lookup(get_store(current_app), key_hash)
        _cache().put(key_hash, value)
    return value


def client_address():
    """The client's address (the real one behind TRUSTED_PROXY_HOPS proxies)."""
    return request.remote_addr or "unknown"


def _failure_identity():
    return f"auth-failures:{client_address()}"


def count_failed_authentication():
    """One failed authentication (a bad API key, or an unknown StatHat stat key) from the
    client's address, toward AUTH_FAILURE_LIMIT."""
    get_limits(current_app).hit(_failure_identity(), current_app.config["AUTH_FAILURE_LIMIT"])


def refuse_flooding_address(raw):
    """Past AUTH_FAILURE_LIMIT failures a minute, an address's requests are refused before any
    key lookup — unless the key is an active one (many users may share one address)."""
    limit = current_app.config["AUTH_FAILURE_LIMIT"]
    if not get_limits(current_app).exceeded(_failure_identity(), limit):
        return
    if well_formed(raw):
        if _cache().is_active(hash_key(raw), get_store(current_app).active_key_hashes):
            return
    raise rate_limited("Too many failed authentications from this address", 60)


def authenticate():
    """before_request: every /api/ route needs a valid key or, when JWTs are configured, a
    valid JWT; sets ``g.api_key`` to the ApiKey or TokenSubject."""
    if not request.path.startswith("/api/") or request.method == "OPTIONS":
        return
    raw = presented_key()
    bearer = get_bearer(current_app)
    if bearer is not None and looks_like_jwt(raw):
        authenticate_token(bearer, raw)
    else:
        authenticate_key(raw)


def authenticate_token(bearer, raw):
    """The TokenSubject of a valid JWT, set as ``g.api_key``; else 401 counted as a failed
    authentication, or 429 once the address failed too often. A valid token is never refused
    by that limit: checking one is cheap and touches no database."""
    try:
        principal = bearer.subject(get_store(current_app), raw)
    except TokenError as error:
        refuse_flooding_address(raw)
        count_failed_authentication()
        raise ApiError("UNAUTHORIZED", f"Bearer token refused: {error}", status=401) from None
    g.api_key = principal
    return principal


def authenticate_key(raw):
    """The active ApiKey of a raw key presented however (a header, or a StatHat parameter),
    set as ``g.api_key``; else 401, or 429 once the address failed too often."""
    known, api_key = cached_key(raw)
    if not known or api_key is None:
        refuse_flooding_address(raw)
        api_key = resolve_key(raw)
    if api_key is None:
        count_failed_authentication()
        raise ApiError("UNAUTHORIZED", _refusal(raw), status=401)
    g.api_key = api_key
    return api_key


def _refusal(raw):
    """Why a request was not authenticated, and what to send instead."""
    how = "send X-API-Key: <key> or Authorization: Bearer <key>"
    if raw:
        return f"API key invalid or revoked: {how}"
    scheme = request.headers.get("Authorization", "").strip().partition(" ")[0]
    if scheme and scheme.lower() != "bearer":
        return f"API key missing: the Authorization header needs the Bearer scheme; {how}"
    return f"API key missing: {how}"


def tenant_id():
    """The id of the tenant the request acts in (its key's or token's)."""
    return g.api_key.tenant.id


def receipt_scope():
    """The scope of the request's Idempotency-Key receipts: its key's id, or its JWT
    subject's number (apart from every key's)."""
    principal = g.api_key
    if isinstance(principal, ApiKey):
        return principal.id
    return get_bearer(current_app).receipt_scope(get_store(current_app), principal)


def require(scope):
    """403 FORBIDDEN unless the request's key (or token) allows ``scope``."""
    if not g.api_key.allows(scope):
        raise ApiError(
            "FORBIDDEN",
            f"This {g.api_key.kind} may not {scope} (its scopes: {g.api_key.scopes or 'none'})",
            status=403,
        )


def requires(scope):
    """A view decorator: the request's key must allow ``scope`` (else 403 FORBIDDEN)."""

    def decorate(view):
        @functools.wraps(view)
        def checked(*args, **kwargs):
            require(scope)
            return view(*args, **kwargs)

        checked.required_scope = scope
        return checked

    return decorate


def init_app(app):
    """Install the key cache, the JWT verifier (when configured) and the authentication hook
    (before the limiter's)."""
    app.extensions[EXTENSION] = KeyCache()
    init_bearer(app)
    app.before_request(authenticate)
