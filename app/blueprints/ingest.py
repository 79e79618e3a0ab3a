"""POST /api/metrics/counter, /value and /batch."""

from datetime import timedelta

from flask import Blueprint, current_app

from app.body import read_body
from app.db.writer import Answer, Point
from app.errors import ApiError, envelope
from app.ingestion import idempotency_receipt, record, replay_or_raise
from app.schemas import (
    BatchItemSchema,
    BatchSchema,
    CounterSchema,
    ValueSchema,
    load_or_raise,
    not_an_object,
)
from app.timeutil import utcnow

bp = Blueprint("ingest", __name__, url_prefix="/api/metrics")

_counter_schema = CounterSchema()
_value_schema = ValueSchema()
_batch_item_schema = BatchItemSchema()
_batch_schema = BatchSchema()


def _check_time_range(recorded_at, now):
    config = current_app.config
    earliest = now - timedelta(days=config["MAX_PAST_DAYS"])
    latest = now + timedelta(seconds=config["MAX_FUTURE_SECONDS"])
    if not earliest <= recorded_at <= latest:
        message = (
            f"recorded_at must be within the last {config['MAX_PAST_DAYS']} days "
            f"and at most {config['MAX_FUTURE_SECONDS']} seconds ahead"
        )
        raise ApiError("TIMESTAMP_OUT_OF_RANGE", message, details={"recorded_at": [message]})


def load_point(schema, data, metric_type, now):
    """Validate one point's fields and time; raises ApiError with the client-facing code."""
    if not isinstance(data, dict):
        raise not_an_object("item")
    fields = load_or_raise(schema, data)
    metric_type = metric_type or fields["type"]
    value = fields.get("value")
    if value is None:
        if metric_type == "value":
            raise ApiError(
                "VALIDATION_ERROR",
                "value: Missing data for required field.",
                details={"value": ["Missing data for required field."]},
            )
        value = 1.0
    recorded_at = fields["recorded_at"] or now
    _check_time_range(recorded_at, now)
    return Point(fields["name"], metric_type, value, recorded_at)


def _type_mismatch(existing, wanted, status=409):
    message = f"Metric '{existing.name}' is a {existing.type} metric; it cannot take a {wanted}"
    return ApiError("METRIC_TYPE_MISMATCH", message, status=status)


def _single_answer(metric_type, message):
    """The answer to a one-point request, given what the writer did with the point."""

    def respond(result):
        if result.mismatched:
            return Answer(409, envelope(_type_mismatch(result.mismatched[0][1], metric_type)))
        if result.queued:
            return Answer(202, {"success": True, "queued": 1})
        return Answer(201, {"success": True, "message": message})

    return respond


def _record_one(schema, metric_type, message):
    receipt = idempotency_receipt()
    try:
        point = load_point(schema, read_body(), metric_type, utcnow())
    except ApiError as error:
        return replay_or_raise(error, receipt)
    return record([point], _single_answer(metric_type, message), receipt)


@bp.post("/counter")
def record_counter():
    """Add to a counter (value defaults to 1)."""
    return _record_one(_counter_schema, "counter", "Counter metric recorded")


@bp.post("/value")
def record_value():
    """Record one measurement."""
    return _record_one(_value_schema, "value", "Value metric recorded")


def _load_items(items):
    """Validate each batch item on its own: (points, their item indexes, item errors)."""
    now = utcnow()
    points, indexes, errors = [], [], []
    for index, item in enumerate(items):
        try:
            points.append(load_point(_batch_item_schema, item, None, now))
            indexes.append(index)
        except ApiError as exc:
            error = {"index": index, "code": exc.code, "message": exc.message}
            if exc.details:
                error["details"] = exc.details
            errors.append(error)
    return points, indexes, errors


def _nothing_valid(summary):
    return ApiError("VALIDATION_ERROR", "No metric in the batch was valid", extra=summary)


def _batch_answer(points, indexes, item_errors):
    """The answer to a batch, given what the writer did with its valid points."""

    def respond(result):
        errors = list(item_errors)
        for position, existing in result.mismatched:
            error = _type_mismatch(existing, points[position].type)
            errors.append(
                {"index": indexes[position], "code": error.code, "message": error.message}
            )
        errors.sort(key=lambda error: error["index"])
        summary = {"accepted": len(result.written), "rejected": len(errors), "errors": errors}
        if not result.written:
            return Answer(400, envelope(_nothing_valid(summary)))
        if result.queued:
            return Answer(202, {"success": True, "queued": len(result.written), **summary})
        return Answer(201, {"success": True, **summary})

    return respond


@bp.post("/batch")
def record_batch():
    """Validate each item on its own; write the valid ones in one transaction."""
    receipt = idempotency_receipt()
    try:
        items = load_or_raise(_batch_schema, read_body())["metrics"]
        limit = current_app.config["MAX_BATCH"]
        if len(items) > limit:
            raise ApiError(
                "BATCH_TOO_LARGE",
                f"A batch holds at most {limit} metrics, got {len(items)}",
                details={"metrics": [f"At most {limit} items."]},
            )
        points, indexes, errors = _load_items(items)
        if not points:
            raise _nothing_valid({"accepted": 0, "rejected": len(errors), "errors": errors})
    except ApiError as error:
        return replay_or_raise(error, receipt)
    return record(points, _batch_answer(points, indexes, errors), receipt)
