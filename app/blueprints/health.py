"""GET /health (process alive) and GET /ready (database and Redis reachable)."""

import logging

import redis
from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from app.db import get_db

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@bp.get("/health")
def health():
    """The process is up and serving."""
    return jsonify(success=True, status="ok")


def _check_database(engine):
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:  # any failure means not ready; the detail says which
        log.warning("readiness: database check failed: %s", exc)
        return f"error: {type(exc).__name__}"


def _check_redis(url):
    if not url:
        return "not configured"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5).ping()
        return "ok"
    except redis.RedisError as exc:
        log.warning("readiness: redis check failed: %s", exc)
        return f"error: {type(exc).__name__}"


@bp.get("/ready")
def ready():
    """200 when every dependency answers, else 503 naming the one that does not."""
    db = get_db(current_app)
    checks = {"database": _check_database(db.write)}
    if db.read is not db.write and current_app.config["DATABASE_READ_URL"]:
        checks["database_read"] = _check_database(db.read)
    checks["redis"] = _check_redis(current_app.config["REDIS_URL"])
    failed = [name for name, state in checks.items() if state.startswith("error")]
    if failed:
        body = {
            "success": False,
            "error": {
                "code": "SERVICE_UNAVAILABLE",
                "message": f"Not ready: {', '.join(failed)} unreachable",
                "details": checks,
            },
        }
        return jsonify(body), 503, {"Retry-After": "5"}
    return jsonify(success=True, status="ready", checks=checks)
