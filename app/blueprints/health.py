"""GET /health (process alive), GET /ready (dependencies reachable), GET /metrics (Prometheus)."""

import logging

from flask import Blueprint, Response, current_app, jsonify
from werkzeug.exceptions import NotFound

from app import readiness, telemetry
from app.errors import ServiceUnavailable

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@bp.get("/health")
def health():
    """The process is up and serving."""
    return jsonify(success=True, status="ok")


@bp.get("/metrics")
def prometheus_metrics():
    """The service's own figures in Prometheus text format (METRICS_ENDPOINT_ENABLED)."""
    if not current_app.config["METRICS_ENDPOINT_ENABLED"]:
        raise NotFound()
    body, content_type = telemetry.exposition(current_app)
    return Response(body, content_type=content_type)


@bp.get("/ready")
def ready():
    """200 when every dependency answers, else 503 naming the ones that do not."""
    is_ready, detail = readiness.report(current_app)
    if not is_ready:
        failed = [name for name, state in detail["checks"].items() if state.startswith("error")]
        error = ServiceUnavailable(f"Not ready: {', '.join(failed)} unreachable")
        error.details = detail["checks"]
        error.extra = {k: v for k, v in detail.items() if k != "checks"}
        raise error
    return jsonify(success=True, status="ready", **detail)
