"""What GET /metrics serves: this process's figures summed over gunicorn's workers, and the
figures other processes own, read at scrape time: the RQ queues and the queue buffer (from
Redis), the last maintenance runs and the catalogue's totals (from the database). Each read
that fails is left out of the scrape (and /ready says what is down), so a scrape never fails.
Imported only when a scrape comes (prometheus_client picks its multiprocess mode at import)."""

import logging

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from app.core.timeutil import EPOCH
from app.db import get_store
from app.infra.redis import get_redis
from app.ingest.queue_buffer import buffer_state
from app.jobs.state import queue_names, queue_state

log = logging.getLogger(__name__)

BUFFER_FIGURES = {
    "gf_queue_buffered_points": (GaugeMetricFamily, "Points in the queue buffer", "points"),
    "gf_queue_buffered_entries": (
        GaugeMetricFamily, "Requests' entries in the queue buffer", "entries"),
    "gf_queue_pending_entries": (
        GaugeMetricFamily, "Buffer entries in batches being written", "pending_entries"),
    "gf_queue_lag_seconds": (
        GaugeMetricFamily, "Age of the oldest buffered entry (0 when empty)", "oldest_seconds"),
    "gf_queue_drainers": (GaugeMetricFamily, "Drain slots held", "drainers"),
    "gf_queue_drained_points": (
        CounterMetricFamily, "Points the drains stored", "drained_points"),
    "gf_queue_reclaimed_entries": (
        CounterMetricFamily, "Entries taken over from a stalled drainer", "reclaimed_entries"),
    "gf_queue_failed_drains": (
        CounterMetricFamily, "Drain batches that ended in an error", "failed_drains"),
    "gf_queue_failed_points": (
        GaugeMetricFamily, "Points a drain could not apply, kept for requeue", "failed_points"),
}  # fmt: skip

RETENTION_FIGURES = {
    "gf_retention_last_rows_deleted": (
        "Points removed by the last retention run",
        lambda r: r.get("rows_deleted", 0) + r.get("rows_dropped_with_partitions", 0),
    ),
    "gf_retention_last_partitions_dropped": (
        "Daily partitions dropped by the last retention run",
        lambda r: len(r.get("partitions_dropped", [])),
    ),
    "gf_retention_last_receipts_deleted": (
        "Idempotency receipts removed by the last retention run",
        lambda r: r.get("receipts_deleted", 0),
    ),
}


class StateCollector:
    """A prometheus_client collector reading the queues and the maintenance record."""

    def __init__(self, app):
        self.app = app

    def collect(self):
        """Yield the metric families (what can be read now)."""
        reads = (self._queues, self._buffer, self._maintenance, self._catalogue, self._tenants,
                 self._alerts, self._points)  # fmt: skip
        for read in reads:
            try:
                yield from read()
            except Exception as exc:  # a dependency is down: /ready reports it
                log.warning("scrape: %s unavailable: %s", read.__name__, exc)

    def _queues(self):
        connection = get_redis(self.app)
        if connection is None:
            return
        jobs = GaugeMetricFamily(
            "gf_queue_jobs", "RQ jobs by queue and state", labels=["queue", "state"]
        )
        oldest = GaugeMetricFamily(
            "gf_queue_oldest_job_age_seconds", "Age of the oldest waiting job", labels=["queue"]
        )
        for name in queue_names(self.app.config).values():
            state = queue_state(connection, name)
            for kind in ("queued", "started", "failed"):
                jobs.add_metric([name, kind], state[kind])
            oldest.add_metric([name], state["oldest_seconds"] or 0)
        yield jobs
        yield oldest

    def _buffer(self):
        if self.app.config["INGEST_MODE"] != "queue":
            return
        state = buffer_state(get_redis(self.app), self.app.config)
        for name, (kind, help_text, key) in BUFFER_FIGURES.items():
            family = kind(name, help_text, labels=["queue"])
            family.add_metric([state["name"]], state[key] or 0)
            yield family

    def _maintenance(self):
        last = get_store(self.app).maintenance_runs()
        success = GaugeMetricFamily(
            "gf_maintenance_last_success_timestamp_seconds",
            "When each maintenance job last succeeded (Unix time)",
            labels=["job"],
        )
        failing = GaugeMetricFamily(
            "gf_maintenance_failing", "1 when a job's last run failed", labels=["job"]
        )
        for job, record in sorted(last.items()):
            done = record["last_success_at"]
            success.add_metric([job], (done - EPOCH).total_seconds() if done else 0)
            failing.add_metric([job], 1 if record["last_error"] else 0)
        yield success
        yield failing
        yield from _partition_figures(last.get("partitions", {}).get("last_result") or {})
        yield from _retention_figures(last.get("retention", {}).get("last_result") or {})

    def _catalogue(self):
        totals = get_store(self.app).series_totals()
        for name, help_text, value in (
            ("gf_metrics", "Live metrics", totals["metrics"]),
            ("gf_metrics_limit", "METRICS_MAX_METRICS (a tenant's default metric limit)",
             self.app.config["METRICS_MAX_METRICS"]),
            ("gf_series", "Series of the live metrics", totals["series"]),
            ("gf_series_limit_per_metric", "METRICS_MAX_SERIES_PER_METRIC",
             self.app.config["METRICS_MAX_SERIES_PER_METRIC"]),
            ("gf_metrics_near_series_limit", "Metrics with more than 80% of their series limit",
             totals["metrics_near_series_limit"]),
        ):  # fmt: skip
            family = GaugeMetricFamily(name, help_text)
            family.add_metric([], value)
            yield family

    def _tenants(self):
        """Each tenant's use beside its limits (tenant names are operator-made: a bounded
        label set)."""
        families = {
            name: GaugeMetricFamily(name, help_text, labels=["tenant"])
            for name, help_text in TENANT_FIGURES.items()
        }
        for usage in get_store(self.app).tenant_usage():
            own = usage.tenant.limits(self.app.config)
            for name, value in (
                ("gf_tenant_metrics", usage.metrics),
                ("gf_tenant_metrics_limit", own["max_metrics"]),
                ("gf_tenant_series", usage.series),
                ("gf_tenant_series_limit", own["max_series"]),
                ("gf_tenant_points_per_minute_limit", own["points_per_minute"]),
                ("gf_tenant_keys", usage.keys),
            ):
                families[name].add_metric([usage.tenant.name], value)
        yield from families.values()

    def _alerts(self):
        """Alerts by state, their notices by outcome, and when they were last evaluated."""
        found = get_store(self.app).alert_figures()
        states = GaugeMetricFamily("gf_alerts", "Alerts by state", labels=["state"])
        for state in ("ok", "firing"):
            states.add_metric([state], found["alerts"].get(state, 0))
        notices = GaugeMetricFamily(
            "gf_alert_notices",
            "Alert notices by outcome",
            labels=["outcome"],
        )
        for outcome in ("pending", "sent", "failed"):
            notices.add_metric([outcome], found["notices"].get(outcome, 0))
        last = GaugeMetricFamily(
            "gf_alerts_last_evaluation_timestamp_seconds",
            "When an alert was last evaluated (Unix time; 0: never)",
        )
        moment = found["last_evaluated_at"]
        last.add_metric([], (moment - EPOCH).total_seconds() if moment else 0)
        yield from (states, notices, last)

    def _points(self):
        """Where points live, whether that engine answers, and (ClickHouse) its rows by table,
        active parts and the latency of reading them."""
        found = get_store(self.app).points_engine()
        up = GaugeMetricFamily(
            "gf_points_engine_up", "1 when the points engine answers", labels=["engine"]
        )
        up.add_metric([found["engine"]], 1 if found["up"] else 0)
        yield up
        if "rows" not in found:
            return
        rows = GaugeMetricFamily("gf_points_engine_rows", "Rows by table", labels=["table"])
        for table, count in found["rows"].items():
            rows.add_metric([table], count)
        yield rows
        for name, help_text, value in (
            ("gf_points_engine_parts", "Active parts of the points database", found["parts"]),
            ("gf_points_engine_latency_seconds", "Time to read those figures",
             found["latency_ms"] / 1000),
        ):  # fmt: skip
            family = GaugeMetricFamily(name, help_text)
            family.add_metric([], value)
            yield family


TENANT_FIGURES = {
    "gf_tenant_metrics": "The tenant's live metrics",
    "gf_tenant_metrics_limit": "The tenant's metric limit",
    "gf_tenant_series": "Series of the tenant's live metrics",
    "gf_tenant_series_limit": "The tenant's series limit",
    "gf_tenant_points_per_minute_limit": "Points the tenant may write a minute (0: unlimited)",
    "gf_tenant_keys": "The tenant's active API keys",
}


def _partition_figures(result):
    if result.get("days_ahead") is not None:
        ahead = GaugeMetricFamily(
            "gf_partitions_days_ahead", "Days after today with a daily partition (MySQL)"
        )
        ahead.add_metric([], result["days_ahead"])
        yield ahead
    alert = GaugeMetricFamily(
        "gf_partitions_future_rows", "1 when rows landed past the last daily partition (MySQL)"
    )
    alert.add_metric([], 1 if result.get("future_rows") else 0)
    yield alert


def _retention_figures(result):
    for name, (help_text, value) in RETENTION_FIGURES.items():
        family = GaugeMetricFamily(name, help_text)
        family.add_metric([], value(result) if result else 0)
        yield family


def exposition(app):
    """The Prometheus text of every figure (summed over gunicorn's workers, then those other
    processes own, read now) and its content type."""
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = REGISTRY
    if app.config["PROMETHEUS_MULTIPROC_DIR"]:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, app.config["PROMETHEUS_MULTIPROC_DIR"])
    state = CollectorRegistry()
    state.register(StateCollector(app))
    # The classic text format (0.0.4), which every Prometheus reads.
    return generate_latest(registry) + generate_latest(state), CONTENT_TYPE_PLAIN_0_0_4
