"""API keys: format, hashing, a short per-process cache of lookups, and the request check."""

import hashlib
import hmac
import logging
import random
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app, g, request

from app.db import get_db, keys, run_in_transaction, run_read
from app.errors import ApiError
from app.timeutil import utcnow

log = logging.getLogger(__name__)

KEY_PREFIX = "gf_"
KEY_RE = re.compile(r"^gf_[A-Za-z0-9_-]{43}\Z")
DISPLAY_PREFIX_LENGTH = 11
# Revocation must reach every server within 5 s: entries live 3.5–4.5 s.
CACHE_TTL_SECONDS = 4.0
CACHE_MAX_ENTRIES = 10_000
TOUCH_EVERY = timedelta(seconds=60)
EXTENSION = "glowing_fiesta.keys"


@dataclass(frozen=True)
class ApiKey:
    """What a request knows about the key that authenticated it."""

    id: int
    name: str
    prefix: str
    rate_limit: int | None


def generate_key():
    """A new raw key: ``gf_`` and 43 URL-safe characters (256 random bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(raw):
    """SHA-256 hex of a raw key — the only form a key is stored in."""
    return hashlib.sha256(raw.encode("ascii")).hexdigest()


def display_prefix(raw):
    """The short, loggable start of a key."""
    return raw[:DISPLAY_PREFIX_LENGTH]


def create_key(conn, name, rate_limit=None):
    """Store a new key and return ``(raw_key, id)``; the raw key is never stored."""
    raw = generate_key()
    key_id = keys.insert_key(conn, name, hash_key(raw), display_prefix(raw), rate_limit, utcnow())
    return raw, key_id


def presented_key():
    """The key from ``X-API-Key`` or ``Authorization: Bearer``, or None."""
    raw = request.headers.get("X-API-Key")
    if raw is None:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            raw = value
    return raw.strip() if raw else None


class KeyCache:
    """hash → ApiKey (or None for a known-bad key), with slightly randomised expiry.

    Good and bad keys live in separate tables of bounded size, so a flood of random keys
    cannot push the good ones out.
    """

    def __init__(self, ttl=CACHE_TTL_SECONDS, clock=time.monotonic):
        self.ttl = ttl
        self.clock = clock
        self._good = {}
        self._bad = {}
        self._lock = threading.Lock()

    def get(self, key_hash):
        """(hit, value): value is the cached ApiKey or None for a known-bad key."""
        for table in (self._good, self._bad):
            entry = table.get(key_hash)
            if entry is not None and entry[0] >= self.clock():
                return True, entry[1]
        return False, None

    def put(self, key_hash, value):
        """Cache a lookup result."""
        expires = self.clock() + self.ttl * random.uniform(0.875, 1.125)
        table = self._good if value is not None else self._bad
        with self._lock:
            if len(table) >= CACHE_MAX_ENTRIES:
                table.clear()
            table[key_hash] = (expires, value)


def _find_active(conn, key_hash):
    row = keys.find_by_hash(conn, key_hash)
    # The lookup is by hash; compare_digest keeps the final comparison constant-time (SPEC).
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.key_hash, key_hash):
        return None
    return row


def _lookup(db, key_hash):
    row = run_read(db.write, _find_active, key_hash)  # the primary: no replica lag on revoke
    if row is None:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > TOUCH_EVERY:
        run_in_transaction(db.write, keys.touch, row.id, now)
    return ApiKey(row.id, row.name, row.prefix, row.rate_limit)


def resolve_key(raw):
    """The active ApiKey for a raw key, or None; cached for a few seconds per process."""
    if not raw or not KEY_RE.match(raw):
        return None
    key_hash = hash_key(raw)
    cache = current_app.extensions[EXTENSION]
    hit, value = cache.get(key_hash)
    if not hit:
        value = _lookup(get_db(current_app), key_hash)
        cache.put(key_hash, value)
    return value


def authenticate():
    """before_request: every /api/ route needs a valid key; sets ``g.api_key``."""
    if not request.path.startswith("/api/"):
        return
    raw = presented_key()
    api_key = resolve_key(raw)
    if api_key is None:
        reason = "missing" if not raw else "invalid or revoked"
        raise ApiError("UNAUTHORIZED", f"API key {reason}: send X-API-Key", status=401)
    g.api_key = api_key


def init_app(app):
    """Install the key cache and the authentication hook (before the limiter's)."""
    app.extensions[EXTENSION] = KeyCache()
    app.before_request(authenticate)
