"""What the calling key may do: GET /api/limits, the limits that apply to it, so clients (and
the chart page) need not guess them."""

from flask import Blueprint, current_app, g, jsonify

from app.api.auth import tenant_id
from app.db import get_store

bp = Blueprint("account", __name__, url_prefix="/api")


def describe(config, api_key, metrics_used):
    """The limits as the answer lists them: one field per setting (lower case, without its
    ``METRICS_`` prefix), the key's own rate limit, its tenant's limits and what is left of
    the tenant's metric bound."""
    tenant = api_key.tenant.limits(config)
    return {
        "tenant": api_key.tenant.name,
        "max_batch": config["METRICS_MAX_BATCH"],
        "max_buckets": config["METRICS_MAX_BUCKETS"],
        "max_query_names": config["METRICS_MAX_QUERY_NAMES"],
        "max_query_points": config["METRICS_MAX_QUERY_POINTS"],
        "max_metrics": tenant["max_metrics"],
        "metrics_left": max(0, tenant["max_metrics"] - metrics_used),
        "max_series": tenant["max_series"],
        "max_series_per_metric": config["METRICS_MAX_SERIES_PER_METRIC"],
        "points_per_minute": tenant["points_per_minute"],
        "max_past_days": config["METRICS_MAX_PAST_DAYS"],
        "max_future_seconds": config["METRICS_MAX_FUTURE_SECONDS"],
        "max_content_length": config["MAX_CONTENT_LENGTH"],
        "rate_limit": api_key.rate_limit or config["METRICS_RATE_LIMIT_DEFAULT"],
    }


@bp.get("/limits")
def limits():
    """The calling key's limits (any scope may ask)."""
    used = get_store(current_app).count_metrics(tenant_id())
    return jsonify(success=True, **describe(current_app.config, g.api_key, used))
