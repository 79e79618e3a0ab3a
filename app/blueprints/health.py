"""GET /health (process alive), GET /ready (dependencies reachable), GET /metrics (Prometheus)."""

import ipaddress
import logging

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import NotFound

from app.api import readiness
from app.api.errors import ServiceUnavailable

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
    # Imported here: prometheus_client chooses its multiprocess mode when first imported, and
    # gunicorn's master imports this package before it sets PROMETHEUS_MULTIPROC_DIR.
    from app.api.telemetry_state import exposition

    body, content_type = exposition(current_app)
    return Response(body, content_type=content_type)


@bp.get("/ready")
def ready():
    """200 when every dependency answers, else 503 naming the ones that do not; the detail
    (checks, latencies, queue, maintenance) only where READY_DETAIL allows it."""
    is_ready, detail = readiness.report(current_app)
    shown = _shows_detail(current_app.config["READY_DETAIL"])
    if not is_ready:
        failed = [name for name, state in detail["checks"].items() if state.startswith("error")]
        error = ServiceUnavailable(f"Not ready: {', '.join(failed)} unreachable")
        if shown:
            error.details = detail["checks"]
            error.extra = {k: v for k, v in detail.items() if k != "checks"}
        raise error
    return jsonify(success=True, status="ready", **(detail if shown else {}))


def _shows_detail(policy):
    """READY_DETAIL: ``always``, ``never``, or ``loopback`` — for clients on this host only
    (their address as judged after TRUSTED_PROXY_HOPS)."""
    if policy != "loopback":
        return policy == "always"
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False
