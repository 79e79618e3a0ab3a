"""JWT bearer tokens (PyJWT): off unless JWT_SECRET (HS256) or JWT_PUBLIC_KEYS (a PEM or JWKS
file of RS256/ES256 public keys) is set.

A token must be signed with the configured algorithm family (never ``none``, never HS256 when
public keys are configured: that would let a public key serve as a secret), carry ``iss`` and
``aud`` equal to JWT_ISSUER and JWT_AUDIENCE, ``exp``, ``sub`` and ``tenant``; times get 30 s
of leeway. A verified token is cached until it expires, so a request pays a dictionary lookup,
not a signature check. The key file is looked at at most once a second: when it changed it is
re-read and every cached verification dropped, so a key taken out stops its tokens at once.
"""

import base64
import binascii
import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import jwt

from app.api.principals import scopes_from_words
from app.config import ConfigError
from app.core import signing_keys
from app.core.tenants import valid_name

log = logging.getLogger(__name__)

LEEWAY_SECONDS = 30
REQUIRED_CLAIMS = ("exp", "iss", "aud", "sub", "tenant")
SUBJECT_MAX_LENGTH = 255  # jwt_subjects.subject
CACHE_MAX_ENTRIES = 10_000
KEY_FILE_CHECK_SECONDS = 1.0
_JWT_RE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\Z")


class TokenError(Exception):
    """A token that does not verify; the message says why, never what the token holds."""


@dataclass(frozen=True)
class Claims:
    """What a verified token says: its tenant's name, its scopes (in the keys' form), its
    subject, and when it expires (Unix time)."""

    tenant: str
    scopes: str
    subject: str
    expires_at: float


def looks_like_jwt(value):
    """Whether a credential is shaped as a JWT: three base64url segments, the first a JSON
    header with ``alg``. API keys never are; anything else is looked up as a key."""
    if not isinstance(value, str) or _JWT_RE.match(value) is None:
        return False
    header = value.partition(".")[0]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (ValueError, binascii.Error):
        return False
    return isinstance(decoded, dict) and "alg" in decoded


def claims_of(payload):
    """The Claims of a verified payload, or TokenError for a tenant, sub or scope unusable."""
    tenant, subject, scope = payload["tenant"], payload["sub"], payload.get("scope", "")
    if not valid_name(tenant):
        raise TokenError('the "tenant" claim is not a tenant name')
    if not isinstance(subject, str) or not 0 < len(subject) <= SUBJECT_MAX_LENGTH:
        raise TokenError(f'the "sub" claim must be 1-{SUBJECT_MAX_LENGTH} characters')
    if not isinstance(scope, str):
        raise TokenError('the "scope" claim must be a string of space-separated words')
    return Claims(tenant, scopes_from_words(scope.split()), subject, float(payload["exp"]))


def _file_stamp(path):
    status = os.stat(path)
    return (status.st_mtime_ns, status.st_size, status.st_ino)


class KeyFile:
    """JWT_PUBLIC_KEYS: its keys, re-read when the file's time, size or inode change."""

    def __init__(self, path, clock=time.monotonic):
        self.path = path
        self.clock = clock
        self._stamp = _file_stamp(path)
        self.keys = signing_keys.parse(Path(path).read_text())
        self._checked_at = clock()
        self._refused = None  # the stamp of a version that could not be read
        self._lock = threading.Lock()

    def changed(self):
        """Whether the keys were re-read just now (the file is looked at once a second at
        most). A file gone, unreadable or without a usable key is logged once, and the keys
        read before stay."""
        if self.clock() - self._checked_at < KEY_FILE_CHECK_SECONDS:
            return False
        with self._lock:
            if self.clock() - self._checked_at < KEY_FILE_CHECK_SECONDS:
                return False
            self._checked_at = self.clock()
            try:
                stamp = _file_stamp(self.path)
            except OSError as exc:
                return self._refuse("gone", exc)
            if stamp in (self._stamp, self._refused):
                return False
            try:
                keys = signing_keys.parse(Path(self.path).read_text())
            except (OSError, UnicodeDecodeError, signing_keys.KeyFileError) as exc:
                return self._refuse(stamp, exc)
            self.keys, self._stamp, self._refused = keys, stamp, None
        log.info("JWT_PUBLIC_KEYS %s re-read: %d key(s)", self.path, len(keys.by_kid))
        return True

    def _refuse(self, version, exc):
        if version != self._refused:
            log.error("JWT_PUBLIC_KEYS %s not re-read (%s): its keys stay", self.path, exc)
        self._refused = version
        return False


class TokenVerifier:
    """Verifies bearer tokens against one app's settings and caches what it verified."""

    def __init__(self, issuer, audience, secret=None, key_file=None, clock=time.time):
        self.issuer = issuer
        self.audience = audience
        self.secret = secret
        self.key_file = key_file
        self.clock = clock
        self.max_entries = CACHE_MAX_ENTRIES
        self._verified = {}  # token → Claims; read without the lock, changed under it
        self._generation = 0  # counts key-file changes: a verification by an old key is not kept
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config):
        """The app's verifier, or None when neither JWT_SECRET nor JWT_PUBLIC_KEYS is set."""
        secret, path = config.get("JWT_SECRET"), config.get("JWT_PUBLIC_KEYS")
        if not secret and not path:
            return None
        key_file = None
        if path:
            try:
                key_file = KeyFile(path)
            except (OSError, UnicodeDecodeError, signing_keys.KeyFileError) as exc:
                raise ConfigError(f"JWT_PUBLIC_KEYS ({path}) holds no usable key: {exc}") from None
        return cls(config["JWT_ISSUER"], config["JWT_AUDIENCE"], secret or None, key_file)

    def __len__(self):
        """How many verified tokens are cached."""
        return len(self._verified)

    def verify(self, token):
        """The Claims of a token, from the cache while they last; else TokenError."""
        if self.key_file is not None and self.key_file.changed():
            with self._lock:
                self._generation += 1
                self._verified = {}
        claims = self._verified.get(token)
        if claims is not None and self.clock() < claims.expires_at + LEEWAY_SECONDS:
            return claims
        generation = self._generation
        claims = claims_of(self._decode(token))
        self._remember(token, claims, generation)
        return claims

    def _decode(self, token):
        try:
            key, algorithms = self._key_for(token)
            return jwt.decode(
                token,
                key,
                algorithms=algorithms,
                issuer=self.issuer,
                audience=self.audience,
                leeway=LEEWAY_SECONDS,
                options={"require": list(REQUIRED_CLAIMS), "enforce_minimum_key_length": True},
            )
        except jwt.PyJWTError as exc:
            raise TokenError(str(exc)) from None

    def _key_for(self, token):
        """The key and the one algorithm a token may be verified with."""
        if self.secret is not None:
            return self.secret, ["HS256"]
        kid = jwt.get_unverified_header(token).get("kid")
        public = self.key_file.keys.for_token(kid)
        if public is None:
            raise TokenError("no key of JWT_PUBLIC_KEYS has the token's kid")
        return public.key, [public.algorithm]

    def _remember(self, token, claims, generation):
        with self._lock:
            if generation != self._generation:
                return  # the key file changed during the check
            verified = self._verified
            if len(verified) >= self.max_entries:
                self._make_room(verified)
            verified[token] = claims

    def _make_room(self, verified):
        """Drop the expired entries, then the oldest, down to 90 % of the bound (so this
        scan runs once per many new tokens)."""
        now = self.clock()
        for token in [t for t, c in verified.items() if now >= c.expires_at + LEEWAY_SECONDS]:
            del verified[token]
        while len(verified) > self.max_entries * 0.9:
            del verified[next(iter(verified))]
