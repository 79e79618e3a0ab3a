"""API key storage, StatHat stat keys, and the numbers of JWT subjects. Functions take a
connection and never commit."""

import hashlib
import hmac

from sqlalchemy import or_, select, update

from app.db import dialects
from app.db.schema import api_keys, jwt_subjects, stat_keys, tenants

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
    api_keys.c.tenant_id,
    tenants.c.name.label("tenant"),
)
_KEYS = api_keys.join(tenants, tenants.c.id == api_keys.c.tenant_id)


def insert_key(conn, tenant_id, name, key_hash, prefix, rate_limit, scopes, now):
    """Store a new key's hash in a tenant; returns its id."""
    result = conn.execute(
        api_keys.insert().values(
            tenant_id=tenant_id,
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
    """The active (not revoked) key row with this SHA-256 hex (with its tenant's name and
    limits), or None."""
    columns = (*_COLUMNS, tenants.c.max_metrics, tenants.c.max_series, tenants.c.points_per_minute)
    query = select(*columns).select_from(_KEYS).where(api_keys.c.key_hash == key_hash)
    row = conn.execute(query).first()
    # The lookup is by hash; compare_digest keeps the final comparison constant-time (SPEC).
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.key_hash, key_hash):
        return None
    return row


def find(conn, ident, tenant_id=None):
    """The key row (of ``tenant_id``, or any tenant) by numeric id or by display prefix, or
    None."""
    condition = api_keys.c.prefix == str(ident)
    if str(ident).isdigit():
        condition = or_(condition, api_keys.c.id == int(ident))
    query = select(*_COLUMNS).select_from(_KEYS).where(condition)
    if tenant_id is not None:
        query = query.where(api_keys.c.tenant_id == tenant_id)
    return conn.execute(query.order_by(api_keys.c.id)).first()


def list_keys(conn, tenant_id=None):
    """Every key (of ``tenant_id``, or of every tenant), oldest first."""
    query = select(*_COLUMNS).select_from(_KEYS)
    if tenant_id is not None:
        query = query.where(api_keys.c.tenant_id == tenant_id)
    return conn.execute(query.order_by(api_keys.c.id)).all()


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


def insert_stat_key(conn, tenant_id, key_hash, prefix, metric, now):
    """Store a StatHat stat key's hash for a tenant's ``metric``; returns its id."""
    result = conn.execute(
        stat_keys.insert().values(
            tenant_id=tenant_id, key_hash=key_hash, prefix=prefix, metric=metric, created_at=now
        )
    )
    return result.inserted_primary_key[0]


def stat_key_metric(conn, key_hash):
    """(tenant id, metric name) a stat key names, or None."""
    query = select(stat_keys.c.tenant_id, stat_keys.c.metric)
    row = conn.execute(query.where(stat_keys.c.key_hash == key_hash)).first()
    return None if row is None else (row.tenant_id, row.metric)


def subject_id(conn, tenant_id, subject, now):
    """The number of a tenant's JWT subject, given on first use (READ COMMITTED: the second
    look sees a row another transaction made meanwhile)."""
    subject_hash = hashlib.sha256(subject.encode()).hexdigest()
    query = select(jwt_subjects.c.id).where(
        jwt_subjects.c.tenant_id == tenant_id, jwt_subjects.c.subject_hash == subject_hash
    )
    found = conn.execute(query).scalar()
    if found is None:
        conn.execute(
            dialects.of(conn).insert_ignore(jwt_subjects),
            {"tenant_id": tenant_id, "subject_hash": subject_hash, "subject": subject,
             "created_at": now},
        )  # fmt: skip
        found = conn.execute(query).scalar_one()
    return found
