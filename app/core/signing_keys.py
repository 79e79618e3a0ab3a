"""The public keys that verify JWT bearer tokens, from the text of a PEM or JWKS file.

Each key verifies with exactly one algorithm, fixed by the key itself and never by a token:
an RSA key (2048 bits or more) RS256, an EC key on P-256 ES256. Nothing here reads a file;
``app.config`` checks the file at start and ``app.api.tokens`` re-reads it when it changes.
"""

import json
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt import PyJWK, PyJWTError

ALGORITHMS = ("RS256", "ES256")
MIN_RSA_BITS = 2048


class KeyFileError(ValueError):
    """The file holds no usable public key; the message says why."""


@dataclass(frozen=True)
class PublicKey:
    """One verifying key and the one algorithm it accepts."""

    algorithm: str
    key: object  # a cryptography public key


@dataclass(frozen=True)
class PublicKeys:
    """The keys of one file by ``kid`` (a PEM's single key, or a JWKS key without one: None)."""

    by_kid: dict

    def for_token(self, kid):
        """The key a token's ``kid`` names; without a kid, the file's only key. Else None."""
        if kid is None and len(self.by_kid) == 1:
            return next(iter(self.by_kid.values()))
        return self.by_kid.get(kid) if isinstance(kid, str) else None


def algorithm_of(key):
    """The algorithm a public key verifies with, or a KeyFileError naming what is wrong."""
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise KeyFileError(f"an RSA key of {key.key_size} bits (at least {MIN_RSA_BITS})")
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise KeyFileError(f"an EC key on {key.curve.name} (ES256 needs P-256)")
        return "ES256"
    raise KeyFileError(f"a {type(key).__name__} (only RSA for RS256 and EC P-256 for ES256)")


def parse(text):
    """PublicKeys from a PEM public key or a JWKS document (``{"keys": [...]}``)."""
    if text.lstrip().startswith("{"):
        return _jwks(text)
    try:
        key = load_pem_public_key(text.encode())
    except (ValueError, TypeError):
        raise KeyFileError("neither a JWKS document nor a PEM public key") from None
    return PublicKeys({None: PublicKey(algorithm_of(key), key)})


def _jwks(text):
    try:
        entries = json.loads(text).get("keys")
    except (ValueError, AttributeError):
        raise KeyFileError('not a JWKS document: JSON with a "keys" list') from None
    if not isinstance(entries, list):
        raise KeyFileError('not a JWKS document: JSON with a "keys" list')
    by_kid = {}
    for entry in entries:
        key = _jwk(entry)
        if key is None:
            continue
        kid = entry.get("kid")
        if kid in by_kid:
            raise KeyFileError(f"two keys have the kid {kid!r}")
        by_kid[kid] = key
    if not by_kid:
        raise KeyFileError("the JWKS holds no RS256 or ES256 signing key")
    if None in by_kid and len(by_kid) > 1:
        raise KeyFileError("a JWKS of several keys needs a kid on each")
    return PublicKeys(by_kid)


def _jwk(entry):
    """A JWKS entry's PublicKey; None for keys of other uses or algorithms (an identity
    provider's JWKS often lists those too), which are never used."""
    if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
        return None
    if entry.get("kty") not in ("RSA", "EC") or entry.get("alg") not in (None, *ALGORITHMS):
        return None  # symmetric ("oct") keys above all: a public file never holds a secret
    try:
        key = PyJWK(entry).key
    except (PyJWTError, ValueError, TypeError) as exc:
        raise KeyFileError(f"key {entry.get('kid')!r} cannot be read ({exc})") from None
    algorithm = algorithm_of(key)
    if entry.get("alg", algorithm) != algorithm:
        raise KeyFileError(f"key {entry.get('kid')!r} says {entry['alg']}, its type {algorithm}")
    return PublicKey(algorithm, key)
