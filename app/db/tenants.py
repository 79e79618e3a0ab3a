"""Tenant storage: the rows, their limits and each tenant's count of series. Functions take a
connection and never commit.

New metrics and new series of a tenant are made under its row's exclusive lock (``lock``),
taken after the locks of the tenant's metric rows, so concurrent writers on any number of
servers never pass a tenant's limits.
"""

from dataclasses import dataclass

from sqlalchemy import func, select, update

from app.core.tenants import Tenant
from app.db.schema import api_keys, metrics, tenants

_TENANT_COLUMNS = (
    tenants.c.id,
    tenants.c.name,
    tenants.c.max_metrics,
    tenants.c.max_series,
    tenants.c.points_per_minute,
)


def _tenant(row):
    return Tenant(row.id, row.name, row.max_metrics, row.max_series, row.points_per_minute)


def create(conn, name, now, limits):
    """A new tenant ``name`` with ``limits`` ({column: value}); its Tenant, or None when the
    name is taken."""
    if find(conn, name) is not None:
        return None
    conn.execute(tenants.insert().values(name=name, created_at=now, **limits))
    return find(conn, name)


def find(conn, name):
    """The Tenant named ``name``, or None."""
    row = conn.execute(select(*_TENANT_COLUMNS).where(tenants.c.name == name)).first()
    return None if row is None else _tenant(row)


def by_id(conn, tenant_id):
    """The Tenant with this id, or None."""
    row = conn.execute(select(*_TENANT_COLUMNS).where(tenants.c.id == tenant_id)).first()
    return None if row is None else _tenant(row)


def change(conn, name, limits):
    """Set some of a tenant's limits ({column: value, None for the default}); its Tenant, or
    None when there is no such tenant."""
    if limits:
        conn.execute(update(tenants).where(tenants.c.name == name).values(**limits))
    return find(conn, name)


@dataclass(frozen=True)
class Usage:
    """A tenant with what it uses: live metrics, their series, active keys."""

    tenant: Tenant
    metrics: int
    series: int
    keys: int


def usage(conn):
    """Every tenant's Usage, by name."""
    live = (
        select(metrics.c.tenant_id, func.count().label("n"))
        .where(metrics.c.deleted_at.is_(None))
        .group_by(metrics.c.tenant_id)
        .subquery()
    )
    active = (
        select(api_keys.c.tenant_id, func.count().label("n"))
        .where(api_keys.c.revoked_at.is_(None))
        .group_by(api_keys.c.tenant_id)
        .subquery()
    )
    query = (
        select(
            *_TENANT_COLUMNS,
            tenants.c.series_count,
            func.coalesce(live.c.n, 0).label("metrics"),
            func.coalesce(active.c.n, 0).label("keys"),
        )
        .outerjoin(live, live.c.tenant_id == tenants.c.id)
        .outerjoin(active, active.c.tenant_id == tenants.c.id)
        .order_by(tenants.c.name)
    )
    return [Usage(_tenant(r), r.metrics, r.series_count, r.keys) for r in conn.execute(query)]


@dataclass(frozen=True)
class Held:
    """A tenant's row as read under its exclusive lock: its own limits and series count."""

    max_metrics: int | None
    max_series: int | None
    series: int


def lock(conn, tenant_id):
    """Take the tenant row's exclusive lock for the rest of the transaction; a Held."""
    row = conn.execute(
        select(tenants.c.max_metrics, tenants.c.max_series, tenants.c.series_count)
        .where(tenants.c.id == tenant_id)
        .with_for_update()
    ).one()
    return Held(row.max_metrics, row.max_series, row.series_count)


def add_series(conn, tenant_id, count):
    """Add ``count`` (negative: remove) to the tenant's series count; its lock is held."""
    if count:
        conn.execute(
            update(tenants)
            .where(tenants.c.id == tenant_id)
            .values(series_count=tenants.c.series_count + count)
        )
