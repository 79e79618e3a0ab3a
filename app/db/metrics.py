"""Metric name → (id, type) resolution within a tenant, race-safe across servers and against
deletion. A metric is named by its tenant and its name: ``(tenant_id, name)``, a "metric key"."""

import re
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update

from app.core.constants import AFTER_NAME_ALPHABET, NAME_CHARS, TOMBSTONE_PREFIX
from app.db import dialects, tenants
from app.db.schema import metrics, series, stat_keys


@dataclass(frozen=True)
class Metric:
    """A stored metric: its id, tenant, name and type never change once created; ``tagged``
    turns true once it has a tagged series (its points then keep per-series rollups too)."""

    id: int
    name: str
    type: str
    tagged: bool = False
    tenant_id: int = 1

    @property
    def key(self):
        """Its metric key, ``(tenant_id, name)``."""
        return (self.tenant_id, self.name)


def find(conn, tenant_id, names, lock=None):
    """The tenant's stored metrics among ``names``, as {name: Metric}; ``lock``: None,
    "share" or "update" (the rows' lock for the rest of the transaction)."""
    names = tuple(names)
    if not names:
        return {}
    sql = dialects.of(conn).find_metrics(len(names), lock)
    rows = conn.exec_driver_sql(sql, (tenant_id, *names))
    return {
        row.name: Metric(row.id, row.name, row.type, bool(row.tagged), tenant_id) for row in rows
    }


def _insert_ignoring_existing(conn, tenant_id, wanted, now):
    rows = [
        {"tenant_id": tenant_id, "name": name, "type": wanted[name], "created_at": now,
         "updated_at": now}
        for name in sorted(wanted)  # one order everywhere, so concurrent batches don't deadlock
    ]  # fmt: skip
    conn.execute(dialects.of(conn).insert_ignore(metrics), rows)


def resolve(conn, tenant_id, wanted, now, max_metrics=None, exclusive=()):
    """{name: type wanted if new} of one tenant → {name: Metric}, creating the missing ones
    while the tenant has fewer live metrics than its limit (its own, else ``max_metrics``; the
    first wanted first); a name refused for that limit is left out of the answer.

    Every write transaction reads its metrics under a shared lock — one statement per tenant
    and group commit — so no point can land on a metric deleted meanwhile; the ``exclusive``
    ones (those that get new series) under an exclusive lock, taken first, so the series count
    cannot race. New metrics are made under the tenant row's lock, taken after those, so the
    tenant's count cannot race either. Two servers creating one name at once both end with the
    same row: the unique key lets one insert win and the other ignore, and the re-read (READ
    COMMITTED) sees the winner.
    """
    exclusive = sorted(set(exclusive) & set(wanted))
    resolved = find(conn, tenant_id, exclusive, lock="update")
    resolved.update(find(conn, tenant_id, sorted(set(wanted) - set(exclusive)), lock="share"))
    new = [name for name in wanted if name not in resolved]
    if new:
        held = tenants.lock(conn, tenant_id)
        limit = max_metrics if held.max_metrics is None else held.max_metrics
        if limit is not None:
            new = new[: max(0, limit - count_live(conn, tenant_id))]
    if new:
        _insert_ignoring_existing(conn, tenant_id, {name: wanted[name] for name in new}, now)
        resolved.update(find(conn, tenant_id, new, lock="update"))
    return resolved


def lock(conn, metric_id):
    """Take the metric row's exclusive lock for the rest of the transaction; whether the
    metric still lives."""
    row = conn.execute(
        select(metrics.c.deleted_at).where(metrics.c.id == metric_id).with_for_update()
    ).first()
    return row is not None and row.deleted_at is None


def count_live(conn, tenant_id):
    """How many metrics the tenant has (deleted ones do not count)."""
    return conn.execute(
        select(func.count())
        .select_from(metrics)
        .where(metrics.c.tenant_id == tenant_id, metrics.c.deleted_at.is_(None))
    ).scalar()


# Every name character sorts below "{", so the names starting with p are exactly
# p <= name < p + "{" in binary order — an index range on both backends, and case-sensitive
# where LIKE would not be (SQLite's LIKE ignores ASCII case).
_NAME_CHARS = re.compile(rf"^[{NAME_CHARS}]*\Z")


def list_page(conn, tenant_id, prefix, limit, offset, after=None):
    """The tenant's metrics whose name starts with ``prefix`` (and sorts after ``after``), in
    name order (binary), one page."""
    if not _NAME_CHARS.match(prefix):
        return []  # no name can start with it (and MySQL would refuse to compare non-ASCII)
    query = select(metrics.c.id, metrics.c.name, metrics.c.type, metrics.c.created_at).where(
        metrics.c.tenant_id == tenant_id, metrics.c.deleted_at.is_(None)
    )
    if prefix:
        query = query.where(metrics.c.name >= prefix, metrics.c.name < prefix + AFTER_NAME_ALPHABET)
    if after is not None:
        query = query.where(metrics.c.name > after)
    return conn.execute(query.order_by(metrics.c.name).limit(limit).offset(offset)).all()


def tombstone(conn, tenant_id, name, now):
    """Mark the tenant's metric ``name`` deleted and free its name, drop the StatHat stat keys
    naming it and take its series off the tenant's count; the Metric, or None if unknown.

    The exclusive row lock waits for every write transaction holding the row (they read it
    under a shared lock), and every later one finds the name gone: no point lands on the
    metric after this commits.
    """
    row = conn.execute(
        select(metrics.c.id, metrics.c.name, metrics.c.type)
        .where(metrics.c.tenant_id == tenant_id, metrics.c.name == name)
        .with_for_update()
    ).first()
    if row is None:
        return None
    conn.execute(
        update(metrics)
        .where(metrics.c.id == row.id)
        .values(name=f"{TOMBSTONE_PREFIX}{row.id}", deleted_at=now, updated_at=now)
    )
    conn.execute(  # they named this metric
        delete(stat_keys).where(stat_keys.c.tenant_id == tenant_id, stat_keys.c.metric == name)
    )
    made = conn.execute(
        select(func.count()).select_from(series).where(series.c.metric_id == row.id)
    ).scalar()
    if made:
        tenants.lock(conn, tenant_id)
        tenants.add_series(conn, tenant_id, -made)
    return Metric(row.id, row.name, row.type, tenant_id=tenant_id)


def deleted_ids(conn):
    """Ids of deleted metrics whose points may remain."""
    return list(conn.scalars(select(metrics.c.id).where(metrics.c.deleted_at.is_not(None))))


def forget(conn, metric_id):
    """Remove a deleted metric's row (once its points are gone)."""
    conn.execute(
        delete(metrics).where(metrics.c.id == metric_id, metrics.c.deleted_at.is_not(None))
    )
