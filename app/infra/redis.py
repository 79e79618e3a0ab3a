"""The app's one Redis client (REDIS_URL): readiness checks, the ingest queue and the schedule
all use it. Rate limits keep Flask-Limiter's own connection pool, built from the same URL."""

import redis

EXTENSION = "glowing_fiesta.redis"
# Short timeouts: a Redis outage must turn into a quick 503 or fallback, not a hung request.
SOCKET_TIMEOUT_SECONDS = 2.0


def connect(url):
    """A client for ``url`` with the service's timeouts (bytes in and out, as RQ needs)."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        health_check_interval=30,
    )


def get_redis(app):
    """The app's Redis client, or None without REDIS_URL."""
    return app.extensions.get(EXTENSION)


def init_app(app):
    """Create the client when REDIS_URL is set (connections open on first use)."""
    if app.config["REDIS_URL"]:
        app.extensions[EXTENSION] = connect(app.config["REDIS_URL"])
