"""The write path's front door: group commit or the queue, as INGEST_MODE says, and the
Idempotency-Key that makes a retried POST apply at most once."""

import hashlib
import logging
import re

from flask import current_app, g, jsonify, request
from marshmallow import ValidationError
from redis import RedisError

from app import queue_front, telemetry
from app.auth import ADMIN
from app.body import raw_body
from app.config import ConfigError
from app.constants import IDEMPOTENCY_KEY_PATTERN
from app.db import get_db, run_read
from app.db.receipts import Receipt
from app.db.writer import CONFLICT, WriteRequest, recorded_answer
from app.errors import ApiError, envelope, from_validation_error
from app.redis import get_redis
from app.schemas import accepted_window
from app.timeutil import utcnow

log = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"
_KEY_RE = re.compile(IDEMPOTENCY_KEY_PATTERN)


def write_window():
    """The recorded_at times this request's key may write now: METRICS_MAX_PAST_DAYS back, or
    for an ``admin`` key (imports of history) back to the oldest data kept."""
    config = current_app.config
    past_days = config["MAX_PAST_DAYS"]
    if g.api_key.allows(ADMIN):
        kept = config["RETENTION_DAYS"] or config["ROLLUP_MINUTE_DAYS"]  # 0: rollups only
        past_days = max(past_days, kept + config["RETENTION_GRACE_DAYS"])
    return accepted_window(utcnow(), past_days, config["MAX_FUTURE_SECONDS"])


def idempotency_receipt():
    """The request's Idempotency-Key as a Receipt (scoped to its API key), or None."""
    raw = request.headers.get(IDEMPOTENCY_HEADER, "")
    if raw == "":
        return None
    if not _KEY_RE.match(raw):
        message = "Must be 1-255 visible ASCII characters."
        raise ApiError(
            "VALIDATION_ERROR",
            f"{IDEMPOTENCY_HEADER}: {message}",
            details={IDEMPOTENCY_HEADER: [message]},
        )
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path.encode(), raw_body()):
        digest.update(len(part).to_bytes(8, "big") + part)
    return Receipt(g.api_key.id, raw, digest.hexdigest())


def handle(parse):
    """Every ingest route: read the Idempotency-Key, ``parse()`` the body into (points, respond)
    — a refusal is replayed instead when the key was applied already — and record them."""
    receipt = idempotency_receipt()
    try:
        points, respond = parse()
    except (ApiError, ValidationError) as error:
        return replay_or_raise(error, receipt)
    answer = record(points, respond, receipt)
    if not answer.replayed:
        telemetry.count_outcome(answer.status, answer.body, answer.stored)
    return answer_response(answer)


def record(points, respond, receipt):
    """Store (or enqueue) ``points``; the Answer ``respond`` gave (or a replayed one)."""
    app = current_app
    if app.config["INGEST_MODE"] == "queue":
        return queue_front.enqueue(app, points, respond, receipt)
    return get_db(app).writer().submit(WriteRequest(points, respond, receipt))


def replay_or_raise(error, receipt):
    """A request refused before anything was written: if its Idempotency-Key was applied
    already (its points may have aged out of the accepted window since), the first answer."""
    answer = None
    if receipt is not None and current_app.config["INGEST_MODE"] == "queue":
        answer = queue_front.recorded_answer(current_app, receipt)
    elif receipt is not None:
        answer = run_read(get_db(current_app).write, recorded_answer, receipt, utcnow())
    if answer is None:
        if isinstance(error, ValidationError):
            error = from_validation_error(error)
        telemetry.count_outcome(error.status, envelope(error), {})
        raise error
    return answer_response(answer)


def answer_response(answer):
    """The Flask response for an Answer; a replay says so in ``Idempotent-Replayed``."""
    if answer is CONFLICT:
        raise ApiError(
            "IDEMPOTENCY_KEY_REUSED",
            f"This {IDEMPOTENCY_HEADER} was used with a different request in the last 24 hours",
            status=422,
        )
    response = jsonify(answer.body)
    response.status_code = answer.status
    if answer.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


# What a Redis must report before queue mode trusts it with 202'd points: every write in the
# append-only file and on disk before the answer, and never a key evicted.
DURABLE_REDIS = {"appendonly": "yes", "appendfsync": "always", "maxmemory-policy": "noeviction"}


def check_queue_durability(client, allow_volatile):
    """Queue mode keeps 202'd points in Redis: refuse to start unless Redis loses no write it
    acknowledged (DURABLE_REDIS), or QUEUE_ALLOW_VOLATILE_REDIS says a development Redis will do."""
    try:
        reported = {name: client.config_get(name).get(name) for name in DURABLE_REDIS}
    except RedisError as exc:
        problem = f"its configuration cannot be read ({exc})"
    else:
        wrong = [f"{name} {reported[name]}" for name, want in DURABLE_REDIS.items()
                 if reported[name] != want]  # fmt: skip
        problem = f"it has {', '.join(wrong)}" if wrong else None
    if problem is None:
        return
    needed = ", ".join(f"{name} {want}" for name, want in DURABLE_REDIS.items())
    message = f"INGEST_MODE=queue needs a Redis with {needed}, but {problem}"
    if not allow_volatile:
        raise ConfigError(
            f"{message}: set them in redis.conf (or CONFIG SET), or "
            "QUEUE_ALLOW_VOLATILE_REDIS=true for development"
        )
    log.warning(
        "%s; running anyway because QUEUE_ALLOW_VOLATILE_REDIS=true: queued points may be lost",
        message,
    )


def init_app(app):
    """In queue mode, check at start that Redis is durable enough to hold 202'd points."""
    if app.config["INGEST_MODE"] == "queue":
        check_queue_durability(get_redis(app), app.config["QUEUE_ALLOW_VOLATILE_REDIS"])
