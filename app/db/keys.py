"""API key storage. Functions take a connection and never commit."""

import hmac

from sqlalchemy import or_, select, update

from app.db.schema import api_keys, stat_keys

_COLUMNS = (
    api_keys.c.id,
    api_keys.c.name,
    api_keys.c.key_hash,
    api_keys.c.prefix,
    api_keys.c.rate_limit,
    api_keys.c.created_at,
    api_keys.c.last_used_at,
    api_keys.c.revoked_at,
    api_keys.c.scopes,
)


def insert_key(conn, name, key_hash, prefix, rate_limit, scopes, now):
    """Store a new key's hash; returns its id."""
    result = conn.execute(
        api_keys.insert().values(
            name=name,
            key_hash=key_hash,
            prefix=prefix,
            rate_limit=rate_limit,
            scopes=scopes,
            created_at=now,
        )
    )
    return result.inserted_primary_key[0]


def find_active(conn, key_hash):
    """The active (not revoked) key row with this SHA-256 hex, or None."""
    row = conn.execute(select(*_COLUMNS).where(api_keys.c.key_hash == key_hash)).first()
    # The lookup is by hash; compare_digest keeps the final comparison constant-time (SPEC).
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.key_hash, key_hash):
        return None
    return row


def find(conn, ident):
    """The key row by numeric id or by display prefix, or None."""
    condition = api_keys.c.prefix == ident
    if str(ident).isdigit():
        condition = or_(condition, api_keys.c.id == int(ident))
    return conn.execute(select(*_COLUMNS).where(condition)).first()


def list_keys(conn):
    """Every key, oldest first."""
    return conn.execute(select(*_COLUMNS).order_by(api_keys.c.id)).all()


def revoke(conn, key_id, now):
    """Mark a key revoked; returns True when it was active."""
    result = conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount == 1


def touch(conn, key_id, now):
    """Record that a key was used."""
    conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=now))


def change(conn, key_id, **values):
    """Change a key's ``rate_limit`` and/or ``scopes``."""
    conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(**values))


def active_hashes(conn):
    """The hashes of every key not revoked."""
    return set(conn.scalars(select(api_keys.c.key_hash).where(api_keys.c.revoked_at.is_(None))))


def insert_stat_key(conn, key_hash, prefix, metric, now):
    """Store a StatHat stat key's hash for ``metric``; returns its id."""
    result = conn.execute(
        stat_keys.insert().values(key_hash=key_hash, prefix=prefix, metric=metric, created_at=now)
    )
    return result.inserted_primary_key[0]


def stat_key_metric(conn, key_hash):
    """The metric a stat key names, or None."""
    return conn.execute(select(stat_keys.c.metric).where(stat_keys.c.key_hash == key_hash)).scalar()
