"""JWT bearer tokens as principals: a verified token's tenant (looked up by name and cached a
few seconds, as key lookups are), its TokenSubject, and the scope of its subject's
Idempotency-Key receipts (numbered in the database on first use, then cached)."""

import threading

from cachetools import LRUCache, TTLCache

from app.api.principals import TokenSubject
from app.api.tokens import TokenError, TokenVerifier
from app.core.timeutil import utcnow
from app.db.receipts import subject_scope

EXTENSION = "glowing_fiesta.tokens"
# A tenant made or changed is seen within 5 s, like a key's revocation.
TENANT_CACHE_SECONDS = 4.0
CACHE_MAX_ENTRIES = 10_000


class Bearer:
    """One app's JWT side: its verifier, tenants by name, subjects' receipt scopes."""

    def __init__(self, verifier):
        self.verifier = verifier
        self._tenants = TTLCache(CACHE_MAX_ENTRIES, TENANT_CACHE_SECONDS)
        self._scopes = LRUCache(CACHE_MAX_ENTRIES)
        self._lock = threading.Lock()

    def subject(self, store, token):
        """The TokenSubject of a token, or TokenError (its tenant must exist)."""
        claims = self.verifier.verify(token)
        tenant = self._tenant(store, claims.tenant)
        if tenant is None:
            raise TokenError("the token's tenant does not exist")
        return TokenSubject(claims.subject, claims.scopes, tenant)

    def _tenant(self, store, name):
        with self._lock:
            if name in self._tenants:
                return self._tenants[name]
        tenant = store.tenant(name)
        with self._lock:
            self._tenants[name] = tenant
        return tenant

    def receipt_scope(self, store, principal):
        """The Idempotency-Key scope of a TokenSubject: its own, apart from every key's."""
        ident = (principal.tenant.id, principal.subject)
        with self._lock:
            if ident in self._scopes:
                return self._scopes[ident]
        scope = subject_scope(store.jwt_subject_id(*ident, utcnow()))
        with self._lock:
            self._scopes[ident] = scope
        return scope


def get_bearer(app):
    """The app's Bearer, or None when JWTs are off."""
    return app.extensions[EXTENSION]


def init_app(app):
    """Build the verifier from the settings (None: JWTs are off)."""
    verifier = TokenVerifier.from_config(app.config)
    app.extensions[EXTENSION] = Bearer(verifier) if verifier is not None else None
