"""The HTTP side of every write route: the Idempotency-Key header, the accepted time window of
the calling key, handing the parsed points to the front door, and rendering its answer."""

import hashlib
import re

from flask import current_app, g, jsonify, request
from marshmallow import ValidationError

from app.api.auth import receipt_scope
from app.api.body import raw_body
from app.api.errors import ApiError, envelope, from_validation_error
from app.api.limits import spend_points
from app.api.principals import ADMIN
from app.api.schemas import accepted_window
from app.core.constants import IDEMPOTENCY_KEY_PATTERN
from app.core.timeutil import utcnow
from app.core.writes import CONFLICT
from app.db.receipts import Receipt
from app.infra import telemetry
from app.ingest import answers
from app.ingest.front_door import get_front_door

IDEMPOTENCY_HEADER = "Idempotency-Key"
_KEY_RE = re.compile(IDEMPOTENCY_KEY_PATTERN)


def write_window():
    """The recorded_at times this request's key may write now: METRICS_MAX_PAST_DAYS back, or
    for an ``admin`` key (imports of history) back to the oldest data kept."""
    config = current_app.config
    past_days = config["METRICS_MAX_PAST_DAYS"]
    if g.api_key.allows(ADMIN):
        kept = (
            config["METRICS_RETENTION_DAYS"] or config["METRICS_ROLLUP_MINUTE_DAYS"]
        )  # 0: rollups only
        past_days = max(past_days, kept + config["METRICS_RETENTION_GRACE_DAYS"])
    return accepted_window(
        utcnow(), past_days, config["METRICS_MAX_FUTURE_SECONDS"], config["METRICS_MAX_TAGS"],
        g.api_key.tenant.id,
    )  # fmt: skip


def write_limits():
    """The limits this request's writes are held to (its tenant's), for its refusals."""
    return answers.Limits.of(current_app.config, g.api_key.tenant)


def idempotency_receipt():
    """The request's Idempotency-Key as a Receipt (scoped to its API key or JWT subject), or
    None."""
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
    return Receipt(receipt_scope(), raw, digest.hexdigest())


def handle(parse):
    """Every ingest route: read the Idempotency-Key, ``parse()`` the body into (points, respond)
    — a refusal is replayed instead when the key was applied already — and record them."""
    receipt = idempotency_receipt()
    try:
        points, respond = parse()
    except (ApiError, ValidationError) as error:
        return replay_or_raise(error, receipt)
    try:
        spend_points(g.api_key, len(points))
    except ApiError as error:
        return replay_or_raise(error, receipt)
    answer = get_front_door(current_app).record(points, respond, receipt)
    if not answer.replayed:
        telemetry.count_outcome(answer.status, answer.body, answer.stored)
    return answer_response(answer)


def replay_or_raise(error, receipt):
    """A request refused before anything was written: if its Idempotency-Key was applied
    already (its points may have aged out of the accepted window since), the first answer."""
    answer = None
    if receipt is not None:
        answer = get_front_door(current_app).recorded_answer(receipt)
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
