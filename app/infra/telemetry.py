"""The service's own figures for Prometheus ("metrics" already names the product's data).

One module owns every figure; the app feeds it from two request hooks and a few calls (the
writer's commits, ingest answers, queries, rate-limit refusals). Under gunicorn each worker
writes its figures to ``PROMETHEUS_MULTIPROC_DIR`` and ``GET /metrics`` adds them up, so
they are right with any number of workers; ``gunicorn.conf.py`` points that variable at a
fresh directory before any worker starts and forgets each dead worker's live gauges.

prometheus_client decides at import time whether it runs in multiprocess mode, and the gunicorn
master imports this package before it sets the directory: so it is imported here only when the
first app of a process is created (in each worker, after the fork), never at module import.
"""

import threading
import time

from flask import g, request

_LOCK = threading.Lock()
_FIGURES = None
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


class Figures:
    """Every counter, gauge and histogram of one process."""

    def __init__(self):
        from prometheus_client import Counter, Gauge, Histogram

        self.requests = Counter(
            "gf_http_requests", "HTTP requests answered", ["method", "route", "status"]
        )
        self.request_seconds = Histogram(
            "gf_http_request_duration_seconds",
            "Time to answer a request",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
        )
        self.points = Counter("gf_points_ingested", "Points stored (or queued)", ["type"])
        self.rejected = Counter("gf_points_rejected", "Points refused, by error code", ["code"])
        self.commit_seconds = Histogram(
            "gf_writer_commit_seconds", "Group-commit transaction time", buckets=LATENCY_BUCKETS
        )
        self.batch_requests = Histogram(
            "gf_writer_batch_requests", "Requests per group commit", buckets=SIZE_BUCKETS
        )
        self.batch_points = Histogram(
            "gf_writer_batch_points", "Points per group commit", buckets=SIZE_BUCKETS
        )
        self.query_seconds = Histogram(
            "gf_query_duration_seconds", "Aggregation query time", buckets=LATENCY_BUCKETS
        )
        self.rate_limited = Counter("gf_rate_limited", "Requests refused by a rate limit", ["kind"])
        self.limiter_fallback = Gauge(
            "gf_rate_limit_memory_fallback",
            "1 while a process counts rate limits in memory because Redis is unreachable",
            multiprocess_mode="livemax",
        )


def figures():
    """This process's Figures, created on first use."""
    global _FIGURES
    if _FIGURES is None:
        with _LOCK:
            if _FIGURES is None:
                _FIGURES = Figures()
    return _FIGURES


def observe_commit(requests, answers, seconds):
    """The group writer's observer: one committed group of requests and their answers."""
    f = figures()
    f.commit_seconds.observe(seconds)
    f.batch_requests.observe(len(requests))
    f.batch_points.observe(sum(len(r.points) for r in requests))


def count_outcome(status, body, stored):
    """An ingest answer: the points it stored (or queued) by type and those it refused by code.
    A replayed answer is not counted again."""
    f = figures()
    for metric_type, count in stored.items():
        if count:
            f.points.labels(metric_type).inc(count)
    errors = body.get("errors")
    if errors is not None:
        for error in errors:
            f.rejected.labels(error["code"]).inc()
    elif status >= 400 and "error" in body:
        f.rejected.labels(body["error"]["code"]).inc()


def time_query(seconds):
    """One aggregation query's duration."""
    figures().query_seconds.observe(seconds)


def _record_request(response):
    started = g.get("request_started")  # set by app/logs.py, first of the request hooks
    if started is not None:
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        f = figures()
        f.requests.labels(request.method, rule, str(response.status_code)).inc()
        f.request_seconds.labels(request.method, rule).observe(time.perf_counter() - started)
        if response.status_code == 429:
            f.rate_limited.labels("key" if g.get("api_key") else "auth_failure").inc()
    return response


def init_app(app):
    """Create this process's figures and time every request (the front door hands the
    writer's commits to ``observe_commit``)."""
    figures()
    app.after_request(_record_request)
