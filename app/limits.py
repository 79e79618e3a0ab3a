"""Per-key rate limits with Flask-Limiter: Redis when REDIS_URL is set, else process memory."""

from flask import current_app, g, request
from flask_limiter import Limiter

from app.errors import RETRY_AFTER_SECONDS
from app.limit_storage import SCHEME_PREFIX

EXTENSION = "glowing_fiesta.limiter"


def key_identity():
    """The limit's bucket: the authenticated key's id."""
    return f"key:{g.api_key.id}"


def key_limit():
    """The key's own per-minute limit, else METRICS_RATE_LIMIT_DEFAULT."""
    per_minute = g.api_key.rate_limit or current_app.config["RATE_LIMIT_DEFAULT"]
    return f"{per_minute} per minute"


def _unlimited():
    return not request.path.startswith("/api/") or g.get("api_key") is None


def _request_identity():
    # Flask-Limiter skips requests without an endpoint; /api/ 404s and 405s count too.
    return request.endpoint or "unmatched"


def _retry_after_only_when_refused(response):
    # Flask-Limiter sends its window's Retry-After on every response: keep it on a 429, give a
    # 503 the outage's own, and drop it elsewhere.
    if response.status_code == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    elif response.status_code != 429:
        response.headers.pop("Retry-After", None)
    return response


def init_app(app):
    """Create the app's limiter; one limit shared by all /api/ routes of a key."""
    redis_url = app.config["REDIS_URL"]
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    storage_uri = SCHEME_PREFIX + redis_url if redis_url else "memory://"
    app.config.setdefault("RATELIMIT_STORAGE_URI", storage_uri)
    app.config.setdefault(
        "RATELIMIT_STORAGE_OPTIONS", {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
    )
    # If Redis goes away, count in this process's memory and keep answering.
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    limiter = Limiter(
        key_func=key_identity,
        application_limits=[key_limit],
        request_identifier=_request_identity,
    )
    limiter.request_filter(_unlimited)
    app.after_request(_retry_after_only_when_refused)  # registered first, so it runs last
    limiter.init_app(app)
    app.extensions[EXTENSION] = limiter
    return limiter
