"""The storage interface: one ``Store`` per app, the only thing above ``app/db`` that touches
the database. It owns the engines, the transactions and their retries, the chunk loops and the
dialect (chosen once); its operations are named for what the service does. Callers get plain
values back (rows, Metrics, dicts) and never see a connection.

Points and their rollups live in the ``points`` engine, chosen once: beside the relational data
in the same database (``points_sql.SqlPoints``: a write is one transaction), or in ClickHouse
when POINTS_URL is set (``clickhouse.points.ClickHousePoints``: the relational receipt decides
what was applied). Everything keyed by points goes through it; nothing above branches on it.
"""

import threading
from dataclasses import dataclass

from cachetools import TTLCache

from app.config import raw_keep_days
from app.core.constants import DEFAULT_OPERATION, PERCENTILES
from app.core.writes import replay
from app.db import (
    alerts,
    dialects,
    dimensions,
    keys,
    maintenance,
    metrics,
    partitions,
    receipts,
    rollups,
    runs,
    series,
    tenants,
)
from app.db.aggregate import TooManyPoints, value_of
from app.db.known import KnownSeries
from app.db.locks import named_lock
from app.db.migrate import migrate
from app.db.planner import coverage, plan
from app.db.points_sql import SqlPoints
from app.db.rollups import Partial
from app.db.transaction import ping, run_in_transaction, run_read
from app.db.writer import storage_options

WATERMARK_CACHE_SECONDS = 5
METRIC_CACHE_SECONDS = 4
CATALOGUE_CACHE_SECONDS = 2
SERIES_NEAR_LIMIT = 0.8
RAW_PERCENTILE_FACTOR = 10  # a percentile reads at most METRICS_MAX_QUERY_POINTS × this raw points
ALERTS_LOCK = "alerts:evaluate"
ALERTS_LOCK_LEASE_SECONDS = 300  # /metrics counts the metrics past this share of their series limit


def create_engine_for(url):
    """Build the engine for a DATABASE_URL, with the options its dialect needs."""
    return dialects.for_url(url).create(url)


def points_engine(store, settings):
    """The store's points engine: ClickHouse when POINTS_URL is set (opened on first use),
    else the store's own database."""
    url = settings.get("POINTS_URL")
    if not url:
        return SqlPoints(store)
    from app.db.clickhouse.points import ClickHousePoints

    return ClickHousePoints(store, url)


@dataclass(frozen=True)
class Preparation:
    """The metrics a query reads (dimensions.Prepared, in the query's order), or the names
    not found."""

    prepared: list
    missing: list


class Store:
    """One app's storage: ``write`` engine, ``read`` for queries (a replica or ``write``)."""

    def __init__(self, settings):
        self.settings = settings
        self.write = create_engine_for(settings["DATABASE_URL"])
        self.sql = dialects.of(self.write)  # the dialect's SQL, chosen once
        read_url = settings.get("DATABASE_READ_URL")
        self.read = create_engine_for(read_url) if read_url else self.sql.read_engine(self.write)
        self.points = points_engine(self, settings)
        self._lock = threading.Lock()
        self._disowned = False
        self._known_series = KnownSeries()  # series this process has written
        self._watermarks = TTLCache(maxsize=2, ttl=WATERMARK_CACHE_SECONDS)
        # name → Metric for queries (writes always read the row under a lock); a deleted
        # metric's name is forgotten within these few seconds.
        self._known_metrics = TTLCache(maxsize=100_000, ttl=METRIC_CACHE_SECONDS)
        # metric id → its series catalogue, for filters and group-by (a series made on
        # another server is seen within these few seconds).
        self._catalogues = TTLCache(maxsize=10_000, ttl=CATALOGUE_CACHE_SECONDS)

    # -- the store itself

    def ping(self, replica=False):
        """Raise unless the database (or its replica) answers a trivial query."""
        ping(self.read if replica else self.write)

    def dispose(self, close=True):
        """Drop every pooled connection: closed at shutdown, or (``close=False``) merely
        forgotten in a forked child, whose parent still owns them."""
        self.write.dispose(close=close)
        if self.read is not self.write:
            self.read.dispose(close=close)
        self.points.dispose(close=close)

    # -- tenants

    def create_tenant(self, name, now, limits):
        """A new Tenant with ``limits`` ({max_metrics, max_series, points_per_minute}: None
        for the defaults); None when the name is taken."""
        return run_in_transaction(self.write, tenants.create, name, now, limits)

    def tenant(self, name):
        """The Tenant named ``name``, or None."""
        return run_read(self.write, tenants.find, name)

    def tenant_by_id(self, tenant_id):
        """The Tenant with this id, or None."""
        return run_read(self.write, tenants.by_id, tenant_id)

    def change_tenant(self, name, limits):
        """Set some of a tenant's limits (None: back to the default); its Tenant, or None."""
        return run_in_transaction(self.write, tenants.change, name, limits)

    def tenant_usage(self):
        """Every tenant with its live metrics, series and active keys (tenants.Usage)."""
        return run_read(self.read, tenants.usage)

    # -- metrics (each of a tenant)

    def list_metrics(self, tenant_id, prefix, limit, offset, after=None):
        """Rows (name, type, created_at) of a tenant's live metrics by name, one page."""
        return run_read(self.read, metrics.list_page, tenant_id, prefix, limit, offset, after)

    def count_metrics(self, tenant_id):
        """How many metrics a tenant has (deleted ones do not count)."""
        return run_read(self.read, metrics.count_live, tenant_id)

    def find_metrics(self, tenant_id, names):
        """{name: Metric} of the tenant's stored ones among ``names`` (one read)."""
        return run_read(self.read, metrics.find, tenant_id, names)

    def _known(self, tenant_id, names):
        with self._lock:
            known = self._known_metrics
            return {n: known[tenant_id, n] for n in names if (tenant_id, n) in known}

    def _remember(self, found):
        # Kept a few seconds from when first found: a name in use is never kept longer, so a
        # deleted one is forgotten within that time on every server.
        with self._lock:
            for metric in found.values():
                if metric.key not in self._known_metrics:
                    self._known_metrics[metric.key] = metric

    def metric(self, tenant_id, name):
        """The tenant's live Metric named ``name``, or None (known for a few seconds, as for
        queries)."""
        return self._live(tenant_id, [name]).get(name)

    def _live(self, tenant_id, names):
        """{name: Metric} of the tenant's live metrics among ``names``: those looked up in the
        last few seconds from memory, the others in one read."""
        found = self._known(tenant_id, names)
        found.update(self.find_metrics(tenant_id, [name for name in names if name not in found]))
        self._remember(found)
        return found

    def series_totals(self):
        """{"metrics", "series", "metrics_near_series_limit"}: the live metrics, their series,
        and how many of them hold more than SERIES_NEAR_LIMIT of METRICS_MAX_SERIES_PER_METRIC."""
        near = self.settings["METRICS_MAX_SERIES_PER_METRIC"] * SERIES_NEAR_LIMIT
        live, total, crowded = run_read(self.read, series.totals, near)
        return {"metrics": live, "series": total, "metrics_near_series_limit": crowded}

    def series_counts(self, metric_ids):
        """{metric_id: its series count} of some metrics."""
        return run_read(self.read, series.counts, metric_ids)

    def tag_keys(self, metric):
        """[(key, distinct values)] of a metric's tags, by key (from the catalogue)."""
        return run_read(self.read, series.tag_keys, metric.id)

    def tag_values(self, metric, key, prefix, limit, offset):
        """[(value, series)] of one of a metric's tag keys in byte order, one page."""
        return run_read(self.read, series.tag_values, metric.id, key, prefix, limit, offset)

    # -- queries

    def rollup_watermarks(self, sketches=False):
        """{tier: complete from} of the rollups (of their sketches), read at most every few
        seconds."""
        with self._lock:
            cached = self._watermarks.get(sketches)
        if cached is None:
            cached = self.points.watermarks(sketches)
            with self._lock:
                self._watermarks[sketches] = cached
        return cached

    def plan(self, start, end, window_seconds, now, use_rollups=True, operation=None):
        """Which stored data answers [start, end) in buckets of ``window_seconds`` for
        ``operation`` (a percentile needs the tiers' sketches; raises ResolutionUnavailable
        when nothing kept can)."""
        use_rollups = use_rollups and self.settings["METRICS_ROLLUPS"]
        sketches = operation in PERCENTILES
        watermarks = self.rollup_watermarks(sketches) if use_rollups else {}
        covered = coverage(watermarks, now, self.settings)
        return plan(start, end, window_seconds, covered, use_rollups)

    def prepare(self, tenant_id, names, filters=(), group_by=()):
        """Which of a tenant's metrics (and of each, which series, in which groups) a query
        reads, from the metrics and the series catalogues alone — before any point is read, so
        the query's size can be checked first. Preparation."""
        found = self._live(tenant_id, names)
        missing = [name for name in names if name not in found]
        if missing:
            return Preparation([], missing)
        prepared = []
        for name in names:
            metric = found[name]
            catalogue = self.catalogue(metric) if filters or group_by else [(0, {})]
            prepared.append(dimensions.prepare(metric, catalogue, filters, group_by))
        return Preparation(prepared, [])

    def catalogue(self, metric):
        """[(series_id, tags)] of a metric's series, read at most every few seconds."""
        if not metric.tagged:
            return [(0, {})]  # a metric that never had a tag has its untagged series alone
        with self._lock:
            cached = self._catalogues.get(metric.id)
        if cached is None:
            cached = run_read(self.read, series.catalogue, metric.id)
            with self._lock:
                self._catalogues[metric.id] = cached
        return cached

    def aggregate(
        self, preparation, operation, window_seconds, query_plan, top=None, fold=None, orders=None
    ):
        """Bucketed values of each prepared metric over a plan: [(Metric, operation, values)]
        where values are {bucket: value}, or with group_by [(group key, {bucket: value})] in
        top-N order (``top``: N groups and an OTHER group of the rest). ``fold``: the slots of
        ``window_seconds`` merged into buckets of their own (dimensions.values); ``orders``:
        per prepared metric, the group keys of an earlier answer to keep (dimensions.grouped)."""

        def work(source):
            if operation in PERCENTILES:
                self._bound_raw_points(source, preparation, query_plan)
            answers = []
            for index, prepared in enumerate(preparation.prepared):
                chosen = operation or DEFAULT_OPERATION[prepared.metric.type]
                if prepared.groups is None:
                    found = dimensions.values(
                        source, prepared, chosen, window_seconds, query_plan, fold
                    )
                else:
                    order = None if orders is None else orders[index]
                    found = dimensions.grouped(
                        source, prepared, chosen, window_seconds, query_plan, top, fold, order
                    )
                answers.append((prepared.metric, chosen, found))
            return answers

        return self.points.read(work)

    def _bound_raw_points(self, source, preparation, query_plan):
        """Raise TooManyPoints when a percentile would read more raw points (whose values it
        holds in memory) than METRICS_MAX_QUERY_POINTS × 10."""
        limit = self.settings["METRICS_MAX_QUERY_POINTS"] * RAW_PERCENTILE_FACTOR
        total = 0
        for prepared in preparation.prepared:
            metric_id, selection = prepared.metric.id, prepared.selection
            total += source.raw_points(metric_id, query_plan, selection, limit - total)
            if total > limit:
                raise TooManyPoints(
                    f"A percentile over raw points reads at most {limit} of them "
                    "(METRICS_MAX_QUERY_POINTS × 10); narrow the range or use the rollups"
                )

    # -- API keys and StatHat stat keys

    def create_key(self, tenant_id, name, key_hash, prefix, rate_limit, scopes, now):
        """Store a new key's hash in a tenant; its id."""
        return run_in_transaction(
            self.write, keys.insert_key, tenant_id, name, key_hash, prefix, rate_limit, scopes, now
        )

    def active_key(self, key_hash):
        """The active key row with this hash, or None (read from the primary: a revocation is
        never hidden by a replica's lag)."""
        return run_read(self.write, keys.find_active, key_hash)

    def touch_key(self, key_id, now):
        """Record that a key was used."""
        run_in_transaction(self.write, keys.touch, key_id, now)

    def active_key_hashes(self):
        """The hashes of every key not revoked."""
        return run_read(self.write, keys.active_hashes)

    def list_keys(self, tenant_id=None):
        """Every key row (of one tenant, or all), oldest first."""
        return run_read(self.write, keys.list_keys, tenant_id)

    def find_key(self, ident, tenant_id=None):
        """A key row (of one tenant, or any) by id or display prefix, or None."""
        return run_read(self.write, keys.find, ident, tenant_id)

    def change_key(self, key_id, values):
        """Change a key's ``rate_limit`` and/or ``scopes`` ({column: value})."""
        run_in_transaction(self.write, lambda conn: keys.change(conn, key_id, **values))

    def revoke_key(self, key_id, now):
        """Revoke a key; True when it was active."""
        return run_in_transaction(self.write, keys.revoke, key_id, now)

    def replace_key(self, row, key_hash, prefix, now):
        """Revoke a key and store its replacement (same tenant, name, limit and scopes) in one
        transaction; the new id."""

        def work(conn):
            keys.revoke(conn, row.id, now)
            return keys.insert_key(
                conn, row.tenant_id, row.name, key_hash, prefix, row.rate_limit, row.scopes, now
            )

        return run_in_transaction(self.write, work)

    def create_stat_key(self, tenant_id, key_hash, prefix, metric, now):
        """Store a StatHat stat key's hash for a tenant's ``metric``; its id."""
        return run_in_transaction(
            self.write, keys.insert_stat_key, tenant_id, key_hash, prefix, metric, now
        )

    def stat_key_metric(self, key_hash):
        """(tenant id, metric name) a stat key names, or None."""
        return run_read(self.write, keys.stat_key_metric, key_hash)

    def jwt_subject_id(self, tenant_id, subject, now):
        """The number of a tenant's JWT subject (``sub``), given on first use."""
        return run_in_transaction(self.write, keys.subject_id, tenant_id, subject, now)

    # -- alerts (each of a tenant)

    def create_alert(self, tenant_id, values, secret, now):
        """Store a new alert (``values`` by the API's field names); the alert (a dict)."""

        def work(conn):
            return alerts.find(conn, alerts.insert(conn, tenant_id, values, secret, now))

        return run_in_transaction(self.write, work)

    def alert(self, alert_id, tenant_id=None):
        """The alert (of ``tenant_id``, or any) as a dict, or None (read from the primary)."""
        return run_read(self.write, alerts.find, alert_id, tenant_id)

    def list_alerts(self, tenant_id):
        """A tenant's alerts, oldest first."""
        return run_read(self.write, alerts.list_for, tenant_id)

    def change_alert(self, alert_id, values, now):
        """Change some of an alert's fields; the alert as it is afterwards."""

        def work(conn):
            alerts.change(conn, alert_id, values, now)
            return alerts.find(conn, alert_id)

        return run_in_transaction(self.write, work)

    def set_alert_secret(self, alert_id, secret, now):
        """Replace an alert's webhook signing secret."""
        run_in_transaction(self.write, alerts.set_secret, alert_id, secret, now)

    def delete_alert(self, alert_id):
        """Delete an alert, its events and its notices not yet sent."""
        run_in_transaction(self.write, alerts.remove, alert_id)

    def alert_events(self, alert_id):
        """An alert's latest events (rows: at, type, state, channel, outcome), oldest first."""
        return run_read(self.write, alerts.events, alert_id)

    def alert_ids(self):
        """Every alert's id, of every tenant."""
        return run_read(self.write, alerts.all_ids)

    def alerts_lock(self):
        """The lock one evaluation tick holds (LockBusy when another has it; its lease lapses
        after 5 minutes if its holder died)."""
        return named_lock(self.write, ALERTS_LOCK, lease_seconds=ALERTS_LOCK_LEASE_SECONDS)

    def window_aggregate(self, tenant_id, name, filters, operation, start, end, now):
        """The ``operation`` (None: the metric type's default) of a tenant's metric over
        [start, end), through the query engine (its filters, rollups and raw points):
        (Metric, one value merged from minute buckets: None where an empty range has none),
        or None when there is no such metric."""
        preparation = self.prepare(tenant_id, [name], filters)
        if preparation.missing:
            return None
        prepared = preparation.prepared[0]
        chosen = operation or DEFAULT_OPERATION[prepared.metric.type]
        query_plan = self.plan(start, end, 60, now, operation=chosen)

        def work(source):
            if prepared.selection.series_ids == ():
                return {}  # the filters keep no series
            return source.bucket_partials(
                prepared.metric.id, chosen, 60, query_plan, prepared.selection
            )

        merged = Partial()
        for partial in self.points.read(work).values():
            merged.merge(partial)
        return prepared.metric, value_of(merged, chosen)

    def settle_alert(self, alert_id, decide):
        """Apply what ``decide(alert)`` (read under the alert row's lock) returns — None, or
        (columns, events, notices [(notice id, target, body)], result) — in one transaction;
        the result (None when nothing was applied)."""

        def work(conn):
            alert = alerts.find(conn, alert_id, lock=True)
            decision = None if alert is None else decide(alert)
            if decision is None:
                return None
            values, events, notices, result = decision
            alerts.record(conn, alert_id, values)
            for event in events:
                alerts.add_event(conn, alert_id, **event)
            for notice_id, target, body in notices:
                alerts.add_notice(conn, alert_id, notice_id, target, body, values["evaluated_at"])
            return result

        return run_in_transaction(self.write, work)

    def alerts_with_due_notices(self, now):
        """Ids of the alerts with a notice due at ``now``."""
        return run_read(self.write, alerts.due_alerts, now)

    def due_notices(self, alert_id, now):
        """An alert's notices due at ``now`` (rows: id, notice_id, target, body, attempts)."""
        return run_read(self.write, alerts.due_notices, alert_id, now)

    def notice_attempted(self, row_id, values, event=None):
        """Record an attempt at a notice (and its event) in one transaction."""

        def work(conn):
            alerts.notice_tried(conn, row_id, values)
            if event is not None:
                row = alerts.notice_row(conn, row_id)
                if row is not None:
                    alerts.add_event(conn, row.alert_id, **event)

        run_in_transaction(self.write, work)

    def record_alert_event(self, alert_id, event):
        """Record one event of an alert (a test notice's outcome)."""
        run_in_transaction(self.write, lambda conn: alerts.add_event(conn, alert_id, **event))

    def pending_notices(self):
        """How many notices wait to be sent."""
        return run_read(self.write, alerts.pending_notices)

    def alert_figures(self):
        """Alerts by state, notices by outcome and the latest evaluation (alerts.figures)."""
        return run_read(self.read, alerts.figures)

    # -- writes

    def write_requests(self, requests, now):
        """Apply write requests (core.writes.WriteRequest) in one transaction, retried on
        deadlock: metrics and series resolved (new ones made within METRICS_MAX_METRICS and
        METRICS_MAX_SERIES_PER_METRIC), points inserted, rollups kept, Idempotency-Key
        receipts claimed and their answers recorded. Each request's Answer (or CONFLICT)."""
        options = storage_options(self.settings)
        if not options.keep_rollups:
            self._disown_rollups()
        return self.points.write_requests(requests, now, options, self._known_series)

    def _disown_rollups(self):
        # Points written now are missing from the rollups: they are complete nowhere until
        # `flask rollups rebuild` (queries read raw points meanwhile). Once per store.
        with self._lock:
            if self._disowned:
                return
            self._disowned = True
        run_in_transaction(self.write, rollups.disown)

    def resolve_metrics(self, tenant_id, wanted, now):
        """{name: type wanted if new} of a tenant → {name: Metric}, creating the missing ones
        while its metric limit allows (a refused name is left out)."""
        limit = self.settings["METRICS_MAX_METRICS"]
        return run_in_transaction(self.write, metrics.resolve, tenant_id, wanted, now, limit)

    def resolve_series(self, metric, wanted, now):
        """{tags_hash: series_id, or None when refused for a series limit (the metric's or its
        tenant's)} of ``wanted`` ({tags_hash: canonical text}) for a live ``metric``, making
        the new ones in one short transaction; {} if the metric was deleted meanwhile."""
        limit = self.settings["METRICS_MAX_SERIES_PER_METRIC"]
        tenant_limit = self.settings["TENANT_MAX_SERIES"]

        def work(conn):
            if not metrics.lock(conn, metric.id):
                return {}
            made = series.make_many(
                conn, metric.tenant_id, [(metric, wanted)], now, limit, tenant_limit
            )[metric.id]
            found = series.find(conn, metric.id, set(wanted))
            return {h: made.made.get(h, found.get(h)) for h in wanted}

        return run_in_transaction(self.write, work)

    def recorded_answer(self, receipt, now):
        """The answer the first request with this receipt's key got (or CONFLICT), or None."""
        recorded = self.recorded(receipt, now)
        return None if recorded is None else replay(receipt, recorded)

    def recorded(self, receipt, now):
        """What the first request with this receipt's key left (receipts.Recorded), or None
        (also while its points are not known to have landed: a write settles that)."""
        recorded = run_read(self.write, receipts.find, receipt, now)
        return self.points.settled(receipt, now, recorded)

    # -- deleting a metric

    def delete_metric(self, tenant_id, name, finish_later):
        """Delete the tenant's metric ``name``: its name is free and no point can land on it
        from the moment this returns; every row keyed by it goes now when they are few (a
        chunk of each table), else ``finish_later(metric_id)`` removes the rest (and returns
        how many points, if it waited). (Metric, points deleted, finished) or None."""
        return maintenance.delete_metric(self, tenant_id, name, finish_later)

    def purge_metric(self, metric_id):
        """Remove what remains of a deleted metric, in paced chunks; how many points went."""
        return maintenance.purge_metric_points(self, metric_id)

    # -- maintenance

    def ensure_partitions(self, now=None, due=None, force=False):
        """Keep daily partitions PARTITIONS_AHEAD_DAYS ahead (a recorded, locked job run)."""
        return maintenance.run_partitions(self, now, due, force)

    def trim(self, now=None, dry_run=False, due=None):
        """Apply retention to points, rollup tiers, receipts and deleted metrics (a recorded,
        locked job run); ``dry_run`` only counts."""
        return maintenance.run_retention(self, now, dry_run, due)

    def rebuild_rollups(self, start=None, end=None, metric=None, progress=None):
        """Recompute rollups from raw points over [start, end) (whole hours)."""
        return self.points.rebuild_rollups(start, end, metric, progress)

    def check_rollups(self, start=None, end=None, metric=None):
        """Where the rollups disagree with the raw points: [(name, tier, bucket, stored, raw)]."""
        return self.points.check_rollups(start, end, metric)

    def copy_points(self, start, end, metric=None, progress=None):
        """Copy the points kept in DATABASE_URL over [start, end) (whole days) to the points
        engine (ClickHouse), resumable and checked; {"metrics", "days_copied",
        "days_already_there", "points"}."""
        return self.points.copy_from_relational(start, end, metric, progress)

    def maintenance_runs(self):
        """{job: its last start, success, result and error}."""
        return run_read(self.write, runs.last_runs)

    def partitions_days_ahead(self, today):
        """Days after ``today`` with a daily partition, or None where there are none."""
        if not self.sql.HAS_PARTITIONS:
            return None
        return run_read(self.write, partitions.days_ahead, today)

    def migrate(self):
        """Bring the schema up to date (safe to run again, and from several hosts at once)."""
        done = migrate(self.write, retention_days=raw_keep_days(self.settings))
        return done + [f"points:{version}" for version in self.points.migrate()]

    def points_engine(self):
        """What /ready and /metrics say of the points engine: its kind, whether it answers
        (``up``), for ClickHouse its parts, rows and latency (or the error met)."""
        try:
            return {**self.points.describe(), "up": True}
        except Exception as exc:  # reported, not raised: the report is about this
            return {"engine": self.points.name, "up": False, "error": type(exc).__name__}

    def ping_points(self):
        """Raise unless the points engine answers."""
        self.points.ping()
