"""The ClickHouse points engine: the same calls as ``app/db/points_sql.py``, answered by the
POINTS_URL database (sql/clickhouse/). Metrics, series and receipts stay relational (the
store's); what lives here is keyed by their ids.

The rollup tiers are kept by the materialized views within each insert, so they are complete
everywhere: their watermark is the epoch, and retention alone bounds them.
"""

import contextlib
import time
from datetime import datetime
from decimal import Decimal

from app.config import raw_keep_days
from app.core.constants import HOUR, MINUTE
from app.db import rebuild
from app.db.clickhouse import copy, schema, writes
from app.db.clickhouse.client import Clients, aware, naive, parse
from app.db.clickhouse.queries import ClickHouseSource
from app.db.decimals import TINY
from app.db.errors import PointsUnavailable
from app.db.locks import named_lock
from app.db.rollups import Partial

POINTS = "points"
TIERS = {MINUTE: "rollups_minute", HOUR: "rollups_hour"}
TABLES = (POINTS, *TIERS.values())
TIME_COLUMNS = {POINTS: "recorded_at", "rollups_minute": "bucket", "rollups_hour": "bucket"}
COLUMNS = ("metric_id", "series_id", "recorded_at", "value", "batch")
EPOCH = datetime(1970, 1, 1)
MIGRATION_LOCK = "migrate:points"
TTL_MARGIN_DAYS = 2  # the backstop TTL: past the retention, never within what it keeps
# A TTL is a DateTime (to 2106): a longer retention (about 55 years from now) has none.
TTL_MAX_DAYS = 20_000


_RANGE = (
    "metric_id = {{metric:UInt64}} AND {column} >= {{start:DateTime64(6, 'UTC')}} "
    "AND {column} < {{end:DateTime64(6, 'UTC')}}"
)
_TIER_ROWS = (
    "SELECT series_id, bucket, sum(n), toString(sum(total)), sum(residual), min(vmin), "
    "max(vmax) FROM <table> WHERE " + _RANGE.format(column="bucket") + " GROUP BY series_id, bucket"
)
_RAW_ROWS = {
    tier: (
        f"SELECT series_id, {start}(recorded_at) AS b, count(), "
        f"toString(sumIf(toDecimal256(toString(value), 30), abs(value) >= {TINY!r})), "
        f"sumIf(value, abs(value) < {TINY!r}), min(value), max(value) FROM points WHERE "
        + _RANGE.format(column="recorded_at")
        + " GROUP BY series_id, b"
    )
    for tier, start in ((MINUTE, "toStartOfMinute"), (HOUR, "toStartOfHour"))
}


class RollupsKeptByClickHouse(rebuild.NothingToDo):
    """Rollups are not rebuilt by hand on ClickHouse: its views keep them."""


@contextlib.contextmanager
def _unavailable_on_errors():
    """ClickHouse unreachable (or its connection lost) → PointsUnavailable (503, Retry-After)."""
    from clickhouse_connect.driver.exceptions import OperationalError

    try:
        yield
    except OperationalError as exc:
        raise PointsUnavailable(f"ClickHouse: {exc}") from exc


class ClickHousePoints:
    """Points in the database of a POINTS_URL; opened on first use."""

    name = "clickhouse"

    def __init__(self, store, url):
        self.store = store
        self.target = parse(url)
        self.clients = Clients(self.target)

    def _query(self, sql, parameters=None):
        with _unavailable_on_errors():
            return self.clients.get().query(sql, parameters=parameters).result_rows

    def _command(self, sql, parameters=None):
        with _unavailable_on_errors():
            return self.clients.get().command(sql, parameters=parameters)

    # -- writes

    def write_requests(self, requests, now, options, known):
        """Apply write requests: receipts pending, points inserted, receipts done (writes)."""
        return writes.write_requests(self.store, self, requests, now, options, known)

    def insert(self, rows, token):
        """Insert point rows (writer's dicts) as one block under ``token``: a block sent again
        with it lands once; on disk when this returns."""
        data = [
            (row["metric_id"], row["series_id"], aware(row["recorded_at"]), row["value"], token)
            for row in rows
        ]
        with _unavailable_on_errors():
            self.clients.get().insert(
                POINTS, data, column_names=COLUMNS,
                settings={"insert_deduplication_token": token},
            )  # fmt: skip

    def landed(self, token):
        """Whether the points written under ``token`` are in ClickHouse."""
        sql = "SELECT count() FROM points WHERE batch = {token:String}"
        return self._query(sql, {"token": token})[0][0] > 0

    def copied(self, metric_id, start, end, token):
        """The Partial (count, exact sum, min, max) of a metric's points in [start, end)
        written under ``token``."""
        sql = (
            "SELECT count(), "
            f"toString(sumIf(toDecimal256(toString(value), 30), abs(value) >= {TINY!r})), "
            f"sumIf(value, abs(value) < {TINY!r}), min(value), max(value) FROM points "
            "WHERE " + _RANGE.format(column="recorded_at") + " AND batch = {token:String}"
        )
        parameters = {"metric": metric_id, "start": aware(start), "end": aware(end), "token": token}
        n, total, residual, vmin, vmax = self._query(sql, parameters)[0]
        if not n:
            return Partial()
        return Partial(n, Decimal(total), residual, vmin, vmax)

    def copy_from_relational(self, start, end, metric, progress):
        """Copy the points kept in DATABASE_URL to ClickHouse (copy.copy_points)."""
        return copy.copy_points(self.store, self, start, end, metric, progress)

    def settled(self, receipt, now, recorded):
        """A receipt's Recorded to replay, once its points are known to have landed (None:
        pending and not landed, for a new write to settle)."""
        return writes.recorded_answer(self.store, self, receipt, now, recorded)

    # -- reads

    def read(self, work):
        """``work(source)`` with a source of bucketed aggregates (queries.ClickHouseSource)."""
        with _unavailable_on_errors():
            return work(ClickHouseSource(self.clients.get()))

    def watermarks(self, sketches=False):
        """Both tiers (their sketches too) complete everywhere: the views add every point as it
        is inserted."""
        return dict.fromkeys(TIERS, EPOCH)

    def stored_points(self, metric_id):
        """(recorded_at, value) of a metric's points in time order (for checks and copies)."""
        sql = (
            "SELECT recorded_at, value FROM points WHERE metric_id = {metric:UInt64} "
            "ORDER BY series_id, recorded_at"
        )
        rows = self._query(sql, {"metric": metric_id})
        return sorted((naive(moment), value) for moment, value in rows)

    def rows_by_metric(self):
        """{table: {metric_id: rows}} of every table here (what an orphan check looks at)."""
        found = {}
        for table in TABLES:
            rows = self._query(f"SELECT metric_id, count() FROM {table} GROUP BY metric_id")
            found[table] = dict(rows)
        return found

    # -- retention and deletion

    def _expired_partitions(self, table, before):
        """[(partition id, rows)] of a table's partitions holding nothing from ``before`` on."""
        sql = (
            "SELECT partition_id, sum(rows), max(max_time) FROM system.parts "
            "WHERE database = currentDatabase() AND table = {table:String} AND active "
            "GROUP BY partition_id ORDER BY partition_id"
        )
        rows = self._query(sql, {"table": table})
        return [(pid, count) for pid, count, last in rows if naive(last) < before]

    def _trim(self, table, before, dry_run):
        """Drop a table's whole partitions before ``before``, then delete its rows left before
        it: (partitions dropped, rows in them, rows deleted)."""
        expired = self._expired_partitions(table, before)
        if not dry_run:
            for partition_id, _ in expired:
                self._command(f"ALTER TABLE {table} DROP PARTITION ID '{partition_id}'")
        column = TIME_COLUMNS[table]
        moment = "{before:DateTime64(6, 'UTC')}"
        rest = self._query(f"SELECT count() FROM {table} WHERE {column} < {moment}",
                           {"before": aware(before)})[0][0]  # fmt: skip
        if rest and not dry_run:
            self._command(
                f"DELETE FROM {table} WHERE {column} < {moment}", {"before": aware(before)}
            )
        return [pid for pid, _ in expired], sum(count for _, count in expired), rest

    def trim_raw(self, trim, before):
        """Retention of the raw points: whole days dropped, then what is left deleted."""
        dropped, rows, rest = self._trim(POINTS, before, trim.dry_run)
        return {"partitions_dropped": dropped, "rows_dropped_with_partitions": rows,
                "rows_deleted": rest}  # fmt: skip

    def trim_tier(self, trim, tier, before):
        """Retention of one rollup tier: its rows before ``before`` (dropped or deleted)."""
        _, rows, rest = self._trim(TIERS[tier], before, trim.dry_run)
        return rows + rest

    def remove_metric(self, metric_id):
        """Delete a metric's points and rollup rows (deletes that return once applied); how
        many points went."""
        parameters = {"metric": metric_id}
        where = "WHERE metric_id = {metric:UInt64}"
        points = self._query(f"SELECT count() FROM points {where}", parameters)[0][0]
        for table in TABLES:
            self._command(f"DELETE FROM {table} {where}", parameters)
        return points

    # -- rollups by hand

    def rebuild_rollups(self, start, end, metric, progress):
        """Refused: ClickHouse's views keep the tiers within every insert."""
        raise RollupsKeptByClickHouse(
            "the rollups live in ClickHouse (POINTS_URL), kept by its materialized views within "
            "every insert: there is nothing to rebuild (`flask rollups check` compares them with "
            "the raw points)"
        )

    def check_rollups(self, start, end, metric):
        """[(metric name, tier, bucket, stored, expected)] where a tier's rows disagree with
        the raw points over [start, end) (whole hours; of every metric, or the one keyed
        ``metric``); a tier of one series is named ``series <tier>``."""
        start, end = rebuild.check_range(self.store.settings, start, end)
        found = []
        for metric_id, name, *_ in rebuild.metric_ids(self.store, metric):
            for tier, table in TIERS.items():
                stored = self._partials(_TIER_ROWS.replace("<table>", table), metric_id, start, end)
                expected = self._partials(_RAW_ROWS[tier], metric_id, start, end)
                for key in sorted(set(stored) | set(expected)):
                    mine, raw = stored.get(key), expected.get(key)
                    if mine is None or not mine.agrees(raw):
                        label = f"series {tier}" if key[0] else tier
                        found.append((name, label, key[1], mine, raw))
        return found

    def _partials(self, sql, metric_id, start, end):
        """{(series_id, bucket): Partial} of a statement's rows."""
        parameters = {"metric": metric_id, "start": aware(start), "end": aware(end)}
        return {
            (series_id, naive(bucket)): Partial(n, Decimal(total), residual, vmin, vmax)
            for series_id, bucket, n, total, residual, vmin, vmax in self._query(sql, parameters)
        }

    # -- the engine itself

    def migrate(self):
        """Apply sql/clickhouse/ (one migrating process at a time) and the retention's
        backstop TTLs; the versions applied."""
        with named_lock(self.store.write, MIGRATION_LOCK, wait_seconds=60):
            with _unavailable_on_errors():
                done = schema.migrate(self.target, self.clients)
                self._backstop_ttls()
        return done

    def _backstop_ttls(self):
        """A TTL on each table two days past what retention keeps, dropping whole parts only:
        should the retention job stop, expired days still go (and points that old are not
        stored at all). Set anew by every migrate from its settings, without rewriting any
        part, so a changed retention takes effect with the next ``make migrate``."""
        settings = self.store.settings
        keep = {
            # Never below the oldest point ingest accepts: a retry asks whether its rows landed.
            POINTS: max(raw_keep_days(settings), settings["METRICS_MAX_PAST_DAYS"] + 1),
            TIERS[MINUTE]: settings["METRICS_ROLLUP_MINUTE_DAYS"],
            TIERS[HOUR]: settings["METRICS_ROLLUP_HOUR_DAYS"],
        }
        for table, days in keep.items():
            days = int(days) + TTL_MARGIN_DAYS
            if days > TTL_MAX_DAYS:  # past DateTime's range: no backstop rather than a wrong one
                if "TTL" in self._engine_of(table):
                    self._command(f"ALTER TABLE {table} REMOVE TTL")
                continue
            self._command(
                f"ALTER TABLE {table} MODIFY TTL toDateTime({TIME_COLUMNS[table]}) + "
                f"toIntervalDay({days}) SETTINGS materialize_ttl_after_modify = 0"
            )
            self._command(f"ALTER TABLE {table} MODIFY SETTING ttl_only_drop_parts = 1")

    def _engine_of(self, table):
        """A table's engine clause as ClickHouse shows it (TTL and settings included)."""
        sql = (
            "SELECT engine_full FROM system.tables "
            "WHERE database = currentDatabase() AND name = {table:String}"
        )
        return self._query(sql, {"table": table})[0][0]

    def ping(self):
        """Raise unless ClickHouse answers a trivial query."""
        self._query("SELECT 1")

    def describe(self):
        """What /ready and /metrics say of the engine: its kind, active parts and rows."""
        started = time.perf_counter()
        sql = (
            "SELECT table, count(), sum(rows) FROM system.parts "
            "WHERE database = currentDatabase() AND active GROUP BY table"
        )
        tables = {table: (parts, rows) for table, parts, rows in self._query(sql)}
        return {
            "engine": self.name,
            "in_process": self.target.in_process,
            "database": self.target.database,
            "parts": sum(parts for parts, _ in tables.values()),
            "rows": {table: tables.get(table, (0, 0))[1] for table in TABLES},
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        }

    def dispose(self, close=True):
        """Close this engine's clients (``close=False``: forget them, in a forked child)."""
        self.clients.close(close)
