"""Maintenance as the store runs it: daily partitions kept ahead, retention trimmed in paced
chunks, deleted metrics purged from every table keyed by metric — each run under a named lock,
recorded in ``maintenance_runs`` and logged in one line. The same code runs from RQ
(app/jobs/maintenance.py), from the embedded default's timer and from the CLI. A failure is
recorded and raised again (RQ retries it).
"""

import logging
import time
import traceback
from datetime import timedelta

from app.config import raw_keep_days
from app.core.timeutil import horizon, isoformat_z, parse_timestamp, utcnow
from app.db import alerts, partitions, receipts, retention, rollups, runs
from app.db import metrics as metric_rows
from app.db.locks import LockBusy, named_lock
from app.db.schema import keyed_by_metric, metric_points
from app.db.transaction import run_in_transaction

log = logging.getLogger(__name__)

PARTITIONS = "partitions"
RETENTION = "retention"


class Skipped(Exception):
    """Another process is running the same job right now."""


def run_job(store, job, work, due=None):
    """Run ``work()`` as ``job``: under its named lock, recorded, logged; its result dict.
    ``due(last_runs)``, when given, is asked again under the lock (None: not due after all)."""
    started, began = utcnow(), time.perf_counter()
    try:
        with named_lock(store.write, f"job:{job}"):
            if due is not None and not due(run_in_transaction(store.write, runs.last_runs)):
                return None
            run_in_transaction(store.write, runs.started, job, started)
            result = work()
            run_in_transaction(store.write, runs.succeeded, job, utcnow(), result)
    except LockBusy:
        log.info("maintenance %s: already running elsewhere; skipped", job)
        raise Skipped(job) from None
    except Exception:
        error = traceback.format_exc(limit=5)
        run_in_transaction(store.write, runs.failed, job, error)
        log.exception("maintenance %s failed after %.1f s", job, time.perf_counter() - began)
        raise
    seconds = round(time.perf_counter() - began, 3)
    extra = {"job": job, "result": result, "seconds": seconds}
    log.info("maintenance %s done in %.1f s: %s", job, seconds, result, extra=extra)
    return result


def _moment(now):
    return parse_timestamp(now) if now else utcnow()


def run_partitions(store, now=None, due=None, force=False):
    """Keep daily partitions PARTITIONS_AHEAD_DAYS ahead (where the dialect has them)."""
    settings, today = store.settings, _moment(now).date()

    def work():
        if not store.sql.HAS_PARTITIONS:
            return {"backend": store.sql.NAME, "created": [], "days_ahead": None}
        engine = store.write
        with named_lock(engine, partitions.LOCK, wait_seconds=60), engine.connect() as conn:
            outcome = partitions.ensure_daily(
                conn, today, today + timedelta(days=settings["PARTITIONS_AHEAD_DAYS"]), force
            )
            outcome["days_ahead"] = partitions.days_ahead(conn, today)
        return outcome

    return run_job(store, PARTITIONS, work, due)


def run_retention(store, now=None, dry_run=False, due=None):
    """Remove points older than the retention (whole partitions, then chunks), expired
    Idempotency-Key receipts and deleted metrics; ``dry_run`` only counts."""
    settings, moment = store.settings, _moment(now)
    before = horizon(moment, raw_keep_days(settings))
    trim = _Trimmer(store, dry_run)

    def work():
        result = {"cutoff": isoformat_z(before), "dry_run": dry_run}
        result.update(store.points.trim_raw(trim, before))
        for tier, key in (
            ("minute", "METRICS_ROLLUP_MINUTE_DAYS"),
            ("hour", "METRICS_ROLLUP_HOUR_DAYS"),
        ):
            tier_before = horizon(moment, settings[key])
            result[f"{tier}_rollups_deleted"] = store.points.trim_tier(trim, tier, tier_before)
        result["metrics_purged"], result["deleted_metric_rows"] = trim.deleted_metrics()
        result["receipts_deleted"] = trim.receipts(moment - receipts.TTL)
        history_before = moment - timedelta(days=alerts.HISTORY_DAYS)
        result["alert_history_deleted"] = trim.alert_history(history_before)
        return result

    return run_job(store, RETENTION, work, due)


class _Trimmer:
    """The steps of a retention run, each chunk its own short transaction."""

    def __init__(self, store, dry_run):
        self.store = store
        self.engine = store.write
        self.has_partitions = store.sql.HAS_PARTITIONS
        self.chunk = store.settings["RETENTION_CHUNK_ROWS"]
        self.settings = store.settings
        self.pacer = Pacer.from_settings(store.settings)
        self.dry_run = dry_run

    def partitions(self, before):
        """Drop whole expired daily partitions (MySQL): their names and rows."""
        if not self.has_partitions:
            return {"partitions_dropped": [], "rows_dropped_with_partitions": 0}
        with named_lock(self.engine, partitions.LOCK, wait_seconds=60):
            with self.engine.connect() as conn:
                names = retention.expired_partitions(conn, before)
                rows = sum(partitions.rows_in(conn, name) for name in names)
                if not self.dry_run:
                    partitions.drop(conn, names)
        return {"partitions_dropped": names, "rows_dropped_with_partitions": rows}

    def points(self, before):
        """Delete (or count) the expired points left, metric by metric, in chunks."""
        ids = run_in_transaction(self.engine, retention.metrics_with_points_before, before)
        if self.dry_run:
            count = retention.count_before
            return sum(run_in_transaction(self.engine, count, i, before) for i in ids)
        return sum(self._drain(metric_id, before) for metric_id in ids)

    def _drain(self, metric_id, before):
        return drain(self.engine, self.chunk, self.pacer, retention.delete_chunk, metric_id, before)

    def rollup_rows(self, tier, before):
        """Delete (or count) one rollup tier's rows (per metric and per series) before its
        own horizon, in chunks."""
        return sum(self._trim_table(table, before) for table in rollups.tier_tables(tier))

    def _trim_table(self, table, before):
        ids = run_in_transaction(self.engine, rollups.metrics_with_rows_before, table, before)
        if self.dry_run:
            return len(ids)  # metrics concerned: counting rows would scan them all
        delete = rollups.delete_chunk
        return sum(
            drain(self.engine, self.chunk, self.pacer, delete, table, metric_id, before)
            for metric_id in ids
        )

    def deleted_metrics(self):
        """Remove what remains of deleted metrics: (metrics finished, rows deleted)."""
        ids = run_in_transaction(self.engine, metric_rows.deleted_ids)
        if self.dry_run:
            return len(ids), 0
        rows = 0
        for metric_id in ids:
            rows += purge_metric_points(self.store, metric_id, self.pacer)
        return len(ids), rows

    def receipts(self, before):
        """Delete expired Idempotency-Key receipts in chunks."""
        if self.dry_run:
            return 0
        return drain(self.engine, self.chunk, self.pacer, receipts.sweep, before)

    def alert_history(self, before):
        """Delete alert events, and notices sent or given up, from before ``before``."""
        if self.dry_run:
            return 0
        return drain(self.engine, self.chunk, self.pacer, alerts.sweep_history, before)


class Pacer:
    """Spaces the chunks of a trim: before each but the first it sleeps ``pause`` seconds, and
    at least as long as the chunk before took, so a trim takes at most half the database's
    time from the writers, whether its chunks are of one metric or of many."""

    def __init__(self, pause, sleep=time.sleep, clock=time.perf_counter):
        self.pause = pause
        self.last = None
        self._sleep, self._clock = sleep, clock

    @classmethod
    def from_settings(cls, settings):
        """The pacer of RETENTION_CHUNK_PAUSE_MS."""
        return cls(settings["RETENTION_CHUNK_PAUSE_MS"] / 1000)

    def run(self, engine, function, *args):
        """``function(conn, *args)`` in its own transaction, after the pause."""
        if self.last is not None:
            self._sleep(max(self.pause, self.last))
        began = self._clock()
        try:
            return run_in_transaction(engine, function, *args)
        finally:
            self.last = self._clock() - began


def drain(engine, chunk, pacer, delete, *args):
    """Run ``delete(conn, *args, chunk)`` through ``pacer`` until a chunk deletes fewer than
    ``chunk`` rows; rows deleted."""
    total = 0
    while True:
        deleted = pacer.run(engine, delete, *args, chunk)
        total += deleted
        if deleted < chunk:
            return total


def purge_metric_points(store, metric_id, pacer=None):
    """Delete a deleted metric's rows from every table keyed by metric (points, rollups…) in
    chunks, and from the points engine's own, then its own row; how many points went."""
    engine, settings = store.write, store.settings
    chunk, pacer = settings["RETENTION_CHUNK_ROWS"], pacer or Pacer.from_settings(settings)
    points = store.points.remove_metric(metric_id)
    for table in keyed_by_metric():
        deleted = drain(engine, chunk, pacer, retention.delete_metric_rows, table, metric_id)
        points += deleted if table is metric_points else 0
    run_in_transaction(engine, metric_rows.forget, metric_id)
    return points


def delete_metric(store, tenant_id, name, finish_later):
    """Delete the tenant's metric ``name``: its name is free and no point can land on it from
    the moment this returns. Its points go now when they are few (one chunk), else
    ``finish_later(metric_id)`` removes the rest (and returns how many, if it waited).
    (Metric, points deleted, finished) or None."""
    metric = run_in_transaction(store.write, metric_rows.tombstone, tenant_id, name, utcnow())
    if metric is None:
        return None
    chunk = store.settings["RETENTION_CHUNK_ROWS"]
    deleted, finished = store.points.remove_metric(metric.id), True
    for table in keyed_by_metric():  # one chunk of each now; the rest later
        delete = retention.delete_metric_rows
        rows = run_in_transaction(store.write, delete, table, metric.id, chunk)
        deleted += rows if table is metric_points else 0
        finished = finished and rows < chunk
    if finished:
        run_in_transaction(store.write, metric_rows.forget, metric.id)
        return metric, deleted, True
    more = finish_later(metric.id)
    if more is not None:
        return metric, deleted + more, True
    log.info("metric %s deleted; its remaining points are being removed", name)
    return metric, deleted, False
