"""Rate limits: per API key on every /api/ route, and per client address on failed
authentication. Counted with ``limits`` (the engine under Flask-Limiter) in fixed one-minute
windows: in Redis when REDIS_URL is set — shared by every server, one round trip a request —
else in process memory. If Redis goes away, each process counts in its own memory and keeps
answering (logged, and shown as ``gf_rate_limit_memory_fallback``); it tries Redis again every
few seconds.

Flask-Limiter's own request hook cost about 0.5 ms of CPU a request here (measured; five times a
bare Flask request), so the contract — limits, X-RateLimit-* headers, 429 with Retry-After,
the fallback — is kept with a few direct calls instead.
"""

import logging
import math
import threading
import time
from dataclasses import dataclass

from flask import current_app, g, request
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter
from redis import RedisError

from app.api.errors import ApiError
from app.api.limit_storage import OneTripRedisStorage
from app.infra import telemetry

log = logging.getLogger(__name__)

EXTENSION = "glowing_fiesta.limits"
RETRY_REDIS_SECONDS = 5.0
REDIS_TIMEOUT_SECONDS = 0.5


@dataclass(frozen=True)
class Window:
    """One counted request: the limit, what is left of it and when the window ends."""

    allowed: bool
    limit: int
    remaining: int
    ends_at: float  # Unix time

    @property
    def reset(self):
        """X-RateLimit-Reset: the whole second after the window ends."""
        return int(self.ends_at) + 1

    def retry_after(self):
        """Seconds until the window ends (at least 1)."""
        return max(1, math.ceil(self.ends_at - time.time()))


class RateLimits:
    """The limiter of one app: Redis (or memory) counting, with a memory fallback."""

    def __init__(self, redis_url):
        self.memory = FixedWindowRateLimiter(MemoryStorage())
        self.shared = None
        if redis_url:
            storage = OneTripRedisStorage(
                redis_url,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
            )
            self.shared = FixedWindowRateLimiter(storage)
        self._down_since = None
        self._lock = threading.Lock()

    def _limiter(self):
        if self.shared is None:
            return self.memory
        if self._down_since is not None:
            if time.monotonic() - self._down_since < RETRY_REDIS_SECONDS:
                return self.memory
            with self._lock:
                self._down_since = None  # this request tries Redis again
        return self.shared

    def _redis_failed(self, exc):
        with self._lock:
            if self._down_since is None:
                log.warning("rate-limit storage unreachable (%s): counting in memory", exc)
            self._down_since = time.monotonic()
        telemetry.figures().limiter_fallback.set(1)

    def hit(self, identity, per_minute, cost=1):
        """Count a request against ``per_minute`` for ``identity``; its Window."""
        item = RateLimitItemPerMinute(per_minute)
        limiter = self._limiter()
        try:
            allowed = limiter.hit(item, identity, cost=cost)
            reset, remaining = limiter.get_window_stats(item, identity)
        except RedisError as exc:
            self._redis_failed(exc)
            return self.hit(identity, per_minute, cost)
        if limiter is self.shared and self.shared is not None:
            telemetry.figures().limiter_fallback.set(0)
        return Window(allowed, per_minute, remaining, reset)

    def take(self, identity, per_minute, cost):
        """Count ``cost`` against ``per_minute`` for ``identity`` only if all of it fits (a
        refusal counts nothing); its Window."""
        item = RateLimitItemPerMinute(per_minute)
        key, expiry = item.key_for(identity), item.get_expiry()
        limiter = self._limiter()
        try:
            if limiter is self.memory:
                taken, count, ends_at = self._take_in_memory(key, expiry, per_minute, cost)
            else:
                taken, count, ends_at = limiter.storage.take(key, expiry, per_minute, cost)
        except RedisError as exc:
            self._redis_failed(exc)
            return self.take(identity, per_minute, cost)
        return Window(taken, per_minute, max(0, per_minute - count), ends_at)

    def _take_in_memory(self, key, expiry, limit, amount):
        storage = self.memory.storage
        with self._lock:
            count = storage.get(key)
            if count + amount <= limit:
                count = storage.incr(key, expiry, amount=amount)
                return True, count, storage.get_expiry(key)
        return False, count, storage.get_expiry(key) if count else time.time() + expiry

    def exceeded(self, identity, per_minute):
        """Whether ``identity`` has used up ``per_minute`` already (nothing is counted)."""
        item = RateLimitItemPerMinute(per_minute)
        limiter = self._limiter()
        try:
            return not limiter.test(item, identity)
        except RedisError as exc:
            self._redis_failed(exc)
            return self.exceeded(identity, per_minute)


def get_limits(app):
    """The app's RateLimits."""
    return app.extensions[EXTENSION]


def rate_limited(message, retry_after, headers=None):
    """The 429 a client sees."""
    return ApiError(
        "RATE_LIMITED",
        message,
        status=429,
        headers={"Retry-After": str(retry_after), **(headers or {})},
    )


def _window_headers(window):
    return {
        "X-RateLimit-Limit": str(window.limit),
        "X-RateLimit-Remaining": str(window.remaining),
        "X-RateLimit-Reset": str(window.reset),
    }


def check_key_limit():
    """before_request, after authentication: count the request against its key's limit."""
    api_key = g.get("api_key")
    if api_key is not None and request.path.startswith("/api/"):
        count_request(api_key)


def count_request(api_key):
    """Count a request against ``api_key``'s limit (429 past it); the headers follow."""
    per_minute = api_key.rate_limit or current_app.config["METRICS_RATE_LIMIT_DEFAULT"]
    window = get_limits(current_app).hit(api_key.limit_identity, per_minute)
    g.rate_window = window
    if not window.allowed:
        raise rate_limited(
            f"Rate limit exceeded: {per_minute} per 1 minute",
            window.retry_after(),
            _window_headers(window),
        )


def spend_points(api_key, count):
    """Take ``count`` points from the budget of ``api_key``'s tenant (its points_per_minute,
    shared by all its keys and every server); a write that would cross it is refused whole:
    429 RATE_LIMITED with Retry-After, nothing counted."""
    per_minute = api_key.tenant.limits(current_app.config)["points_per_minute"]
    if not per_minute or not count:
        return
    window = get_limits(current_app).take(f"tenant-points:{api_key.tenant.id}", per_minute, count)
    if not window.allowed:
        raise rate_limited(
            f"Points budget exceeded: tenant '{api_key.tenant.name}' may write {per_minute} "
            f"points per 1 minute, {window.remaining} are left and this request has {count}",
            window.retry_after(),
        )


def _add_headers(response):
    window = g.get("rate_window")
    if window is not None:
        response.headers.update(_window_headers(window))
    return response


def init_app(app):
    """Create the app's limiter and count every authenticated /api/ request."""
    app.extensions[EXTENSION] = RateLimits(app.config["REDIS_URL"])
    app.before_request(check_key_limit)
    app.after_request(_add_headers)
