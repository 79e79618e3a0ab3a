"""Metric name → (id, type) resolution, race-safe across servers, cached per process."""

import re
import threading
from dataclasses import dataclass

from sqlalchemy import insert, select

from app.db.schema import metrics

CACHE_MAX_ENTRIES = 100_000


@dataclass(frozen=True)
class Metric:
    """A stored metric's identity; neither field ever changes once created."""

    id: int
    name: str
    type: str


class MetricCache:
    """name → Metric. Entries never go stale: a metric's id and type are immutable."""

    def __init__(self):
        self._entries = {}
        self._lock = threading.Lock()

    def get(self, name):
        """The cached Metric or None."""
        return self._entries.get(name)

    def update(self, resolved):
        """Remember metrics that are known to be committed."""
        with self._lock:
            if len(self._entries) + len(resolved) > CACHE_MAX_ENTRIES:
                self._entries.clear()
            self._entries.update(resolved)


def find(conn, names):
    """The stored metrics among ``names``, as {name: Metric}."""
    if not names:
        return {}
    rows = conn.execute(
        select(metrics.c.id, metrics.c.name, metrics.c.type).where(metrics.c.name.in_(names))
    )
    return {row.name: Metric(row.id, row.name, row.type) for row in rows}


def _insert_ignoring_existing(conn, wanted, now):
    rows = [
        {"name": name, "type": wanted[name], "created_at": now, "updated_at": now}
        for name in sorted(wanted)  # one order everywhere, so concurrent batches don't deadlock
    ]
    statement = (
        insert(metrics)
        .prefix_with("IGNORE", dialect="mysql")
        .prefix_with("OR IGNORE", dialect="sqlite")
    )
    conn.execute(statement, rows)


def resolve(conn, wanted, cache, now):
    """{name: type wanted if new} → {name: Metric}, creating the missing ones.

    Two servers creating one name at once both end with the same row: the unique key lets one
    insert win and the other ignore, and the re-read (READ COMMITTED) sees the winner.
    """
    resolved = {}
    for name in wanted:
        cached = cache.get(name)
        if cached is not None:
            resolved[name] = cached
    missing = [name for name in wanted if name not in resolved]
    resolved.update(find(conn, missing))
    new = {name: wanted[name] for name in missing if name not in resolved}
    if new:
        _insert_ignoring_existing(conn, new, now)
        resolved.update(find(conn, list(new)))
    return resolved


# Every name character sorts below "{", so the names starting with p are exactly
# p <= name < p + "{" in binary order — an index range on both backends, and case-sensitive
# where LIKE would not be (SQLite's LIKE ignores ASCII case).
_AFTER_NAME_ALPHABET = "{"
_NAME_CHARS = re.compile(r"^[A-Za-z0-9._-]*\Z")


def list_page(conn, prefix, limit, offset):
    """Metrics whose name starts with ``prefix``, in name order (binary), one page."""
    if not _NAME_CHARS.match(prefix):
        return []  # no name can start with it (and MySQL would refuse to compare non-ASCII)
    query = select(metrics.c.name, metrics.c.type, metrics.c.created_at)
    if prefix:
        query = query.where(
            metrics.c.name >= prefix, metrics.c.name < prefix + _AFTER_NAME_ALPHABET
        )
    return conn.execute(query.order_by(metrics.c.name).limit(limit).offset(offset)).all()
