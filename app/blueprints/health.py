"""GET /health (process alive), GET /ready (dependencies reachable), GET /metrics (Prometheus)."""

import logging

import redis
from flask import Blueprint, Response, current_app, jsonify
from werkzeug.exceptions import NotFound

from app import telemetry
from app.db import get_db, ping
from app.errors import ServiceUnavailable

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)
REDIS_CLIENT = "glowing_fiesta.redis"


@bp.get("/health")
def health():
    """The process is up and serving."""
    return jsonify(success=True, status="ok")


def _check(name, probe):
    try:
        probe()
        return "ok"
    except Exception as exc:  # any failure means not ready; the detail says which
        log.warning("readiness: %s check failed: %s", name, exc)
        return f"error: {type(exc).__name__}"


def _redis_client(app):
    client = app.extensions.get(REDIS_CLIENT)
    if client is None:
        client = redis.Redis.from_url(
            app.config["REDIS_URL"], socket_connect_timeout=0.5, socket_timeout=0.5
        )
        app.extensions[REDIS_CLIENT] = client
    return client


@bp.get("/metrics")
def prometheus_metrics():
    """The service's own figures in Prometheus text format (METRICS_ENDPOINT_ENABLED)."""
    if not current_app.config["METRICS_ENDPOINT_ENABLED"]:
        raise NotFound()
    body, content_type = telemetry.exposition(current_app)
    return Response(body, content_type=content_type)


@bp.get("/ready")
def ready():
    """200 when every dependency answers, else 503 naming the one that does not."""
    app = current_app
    db = get_db(app)
    checks = {"database": _check("database", lambda: ping(db.write))}
    if app.config["DATABASE_READ_URL"]:
        checks["database_read"] = _check("database_read", lambda: ping(db.read))
    if app.config["REDIS_URL"]:
        checks["redis"] = _check("redis", lambda: _redis_client(app).ping())
    else:
        checks["redis"] = "not configured"
    failed = [name for name, state in checks.items() if state.startswith("error")]
    if failed:
        error = ServiceUnavailable(f"Not ready: {', '.join(failed)} unreachable")
        error.details = checks
        raise error
    return jsonify(success=True, status="ready", checks=checks)
