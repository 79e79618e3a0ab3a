"""The relational points engine: points and rollups in DATABASE_URL beside the relational data,
so a write is one transaction (``writer.write_requests``) and a query one statement per metric
(``aggregate``). The store holds this one unless POINTS_URL names ClickHouse
(``clickhouse/points.py``, the same calls)."""

from app.db import rebuild, rollups
from app.db.aggregate import SqlSource
from app.db.rebuild import NothingToDo
from app.db.transaction import run_in_transaction, run_read
from app.db.writer import write_requests


class NoPointsEngine(NothingToDo):
    """A command for a points engine of its own, with none configured."""


class SqlPoints:
    """Points in the store's own database (``store.write``; queries on ``store.read``)."""

    name = "relational"

    def __init__(self, store):
        self.store = store

    def write_requests(self, requests, now, options, known):
        """Apply write requests in one transaction, retried on deadlock."""
        return run_in_transaction(self.store.write, write_requests, requests, now, options, known)

    def read(self, work):
        """``work(source)`` with a source of bucketed aggregates (aggregate.SqlSource)."""
        return run_read(self.store.read, lambda conn: work(SqlSource(conn)))

    def watermarks(self, sketches=False):
        """{tier: complete from} of the rollups, or of their sketches (None: nowhere)."""
        return run_read(self.store.read, rollups.complete_from, sketches)

    def settled(self, receipt, now, recorded):
        """A receipt's Recorded as it stands (relational writes leave none pending)."""
        return recorded

    def trim_raw(self, trim, before):
        """Retention of the raw points: whole partitions, then chunks (maintenance._Trimmer)."""
        return {**trim.partitions(before), "rows_deleted": trim.points(before)}

    def trim_tier(self, trim, tier, before):
        """Retention of one rollup tier, in chunks."""
        return trim.rollup_rows(tier, before)

    def remove_metric(self, metric_id):
        """Nothing of its own: the points and rollup tables are among the store's tables keyed
        by metric, removed in chunks with the others."""
        return 0

    def rebuild_rollups(self, start, end, metric, progress):
        """Recompute rollups from raw points (rebuild.rebuild)."""
        return rebuild.rebuild(self.store, start, end, metric, progress)

    def check_rollups(self, start, end, metric):
        """Where rollups and raw points disagree (rebuild.check)."""
        return rebuild.check(self.store, start, end, metric)

    def copy_from_relational(self, start, end, metric, progress):
        """Refused: the points are in DATABASE_URL already."""
        raise NoPointsEngine("POINTS_URL is not set: the points are in DATABASE_URL already")

    def migrate(self):
        """Nothing of its own: the store's migrations make its tables."""
        return []

    def ping(self):
        """Raise unless the store's database answers."""
        self.store.ping()

    def describe(self):
        """What /ready says of the points engine."""
        return {"engine": self.name}

    def dispose(self, close=True):
        """Nothing of its own: the store's engines hold the connections."""
