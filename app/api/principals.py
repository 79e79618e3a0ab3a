"""Who a request acts as: an API key, or the subject of a JWT bearer token. Both carry their
tenant (everything the request reads or writes is the tenant's), scopes in one form, a rate
limit and what the logs show; routes find either as ``g.api_key`` and never ask which."""

from dataclasses import dataclass
from typing import ClassVar

from app.core.tenants import DEFAULT, Tenant

READ, WRITE, ADMIN = "read", "write", "admin"
DEFAULT_SCOPES = "read,write"


def _allows(scopes, scope):
    granted = scopes.split(",")
    return ADMIN in granted or scope in granted


def scopes_from_words(words):
    """A token's ``scope`` words in the keys' form: ``admin`` (which implies the others),
    ``read,write``, ``read``, ``write``, or none. Other words are ignored, as OAuth does."""
    if ADMIN in words:
        return ADMIN
    return ",".join(scope for scope in (READ, WRITE) if scope in words)


@dataclass(frozen=True)
class ApiKey:
    """What a request knows about the key that authenticated it, and its tenant."""

    kind: ClassVar[str] = "API key"

    id: int
    name: str
    prefix: str
    rate_limit: int | None
    scopes: str = DEFAULT_SCOPES
    tenant: Tenant = DEFAULT

    def allows(self, scope):
        """Whether the key may do what ``scope`` covers (admin may do everything)."""
        return _allows(self.scopes, scope)

    @property
    def limit_identity(self):
        """Whose requests share its rate limit: the key's."""
        return f"key:{self.id}"

    @property
    def who(self):
        """Who made a change, as a log line says it."""
        return f"key {self.id} ({self.prefix})"


@dataclass(frozen=True)
class TokenSubject:
    """The subject (``sub``) of a verified JWT in its tenant, with the token's scopes; limited
    at METRICS_RATE_LIMIT_DEFAULT a minute per subject, as a key without its own limit."""

    kind: ClassVar[str] = "token"
    rate_limit: ClassVar[None] = None

    subject: str
    scopes: str
    tenant: Tenant

    def allows(self, scope):
        """Whether the token may do what ``scope`` covers (admin may do everything)."""
        return _allows(self.scopes, scope)

    @property
    def prefix(self):
        """What the logs show of it: the subject, never the token."""
        return f"jwt:{self.subject}"

    @property
    def limit_identity(self):
        """Whose requests share its rate limit: every token of the subject in its tenant."""
        return f"jwt:{self.tenant.id}:{self.subject}"

    @property
    def who(self):
        """Who made a change, as a log line says it."""
        return f"token {self.prefix}"
