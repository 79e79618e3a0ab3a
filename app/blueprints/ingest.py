"""Writes: POST /api/metrics/counter, /value and /batch, and DELETE /api/metrics/<name>."""

import re

from flask import Blueprint, current_app, jsonify
from marshmallow import ValidationError

from app.auth import WRITE, requires
from app.body import read_body
from app.constants import NAME_PATTERN, NAME_RULE
from app.db import get_db
from app.db.writer import Answer
from app.errors import (
    ApiError,
    envelope,
    from_validation_error,
    metric_limit_exceeded,
    metric_not_found,
)
from app.ingestion import handle, write_window
from app.jobs import maintenance
from app.schemas import BatchSchema, PointSchema, load_point

bp = Blueprint("ingest", __name__, url_prefix="/api/metrics")
NAME_RE = re.compile(NAME_PATTERN)

_counter_schema = PointSchema("counter")
_value_schema = PointSchema("value")
_item_schema = PointSchema()
_batch_schema = BatchSchema()


def _type_mismatch(existing, wanted):
    message = f"Metric '{existing.name}' is a {existing.type} metric; it cannot take a {wanted}"
    return ApiError("METRIC_TYPE_MISMATCH", message, status=409)


def _one_point(schema, message):
    """Parse a one-point body: the point and the answer to give once the writer is done."""
    point = load_point(schema, read_body(), write_window())
    max_metrics = current_app.config["METRICS_MAX_METRICS"]  # respond runs in the writer

    def respond(result):
        if result.limited:
            return Answer(422, envelope(metric_limit_exceeded(point.name, max_metrics)))
        if result.mismatched:
            return Answer(409, envelope(_type_mismatch(result.mismatched[0][1], point.type)))
        if result.queued:
            return Answer(202, {"success": True, "queued": 1})
        return Answer(201, {"success": True, "message": message})

    return [point], respond


@bp.post("/counter")
@requires(WRITE)
def record_counter():
    """Add to a counter (value defaults to 1)."""
    return handle(lambda: _one_point(_counter_schema, "Counter metric recorded"))


@bp.post("/value")
@requires(WRITE)
def record_value():
    """Record one measurement."""
    return handle(lambda: _one_point(_value_schema, "Value metric recorded"))


def _item_error(index, exc):
    """A refused batch item as the answer lists it."""
    error = exc if isinstance(exc, ApiError) else from_validation_error(exc, "Invalid request")
    described = {"index": index, "code": error.code, "message": error.message}
    if error.details:
        described["details"] = error.details
    return described


def _load_items(items):
    """Validate each batch item on its own: (points, their item indexes, item errors)."""
    window = write_window()
    points, indexes, errors = [], [], []
    for index, item in enumerate(items):
        try:
            points.append(load_point(_item_schema, item, window))
            indexes.append(index)
        except ValidationError as exc:
            errors.append(_item_error(index, exc))
    return points, indexes, errors


def _nothing_valid(summary):
    return ApiError("VALIDATION_ERROR", "No metric in the batch was valid", extra=summary)


def _batch(items):
    """Parse a batch body: its valid points and the answer to give once the writer is done."""
    limit = current_app.config["MAX_BATCH"]
    if len(items) > limit:
        raise ApiError(
            "BATCH_TOO_LARGE",
            f"A batch holds at most {limit} metrics, got {len(items)}",
            details={"metrics": [f"At most {limit} items."]},
        )
    points, indexes, item_errors = _load_items(items)
    max_metrics = current_app.config["METRICS_MAX_METRICS"]  # respond runs in the writer
    if not points:
        raise _nothing_valid({"accepted": 0, "rejected": len(item_errors), "errors": item_errors})

    def respond(result):
        errors = list(item_errors)
        for position, existing in result.mismatched:
            errors.append(
                _item_error(indexes[position], _type_mismatch(existing, points[position].type))
            )
        for position in result.limited:
            refusal = metric_limit_exceeded(points[position].name, max_metrics)
            errors.append(_item_error(indexes[position], refusal))
        errors.sort(key=lambda error: error["index"])
        summary = {"accepted": len(result.written), "rejected": len(errors), "errors": errors}
        if not result.written:
            return Answer(400, envelope(_nothing_valid(summary)))
        if result.queued:
            return Answer(202, {"success": True, "queued": len(result.written), **summary})
        return Answer(201, {"success": True, **summary})

    return points, respond


@bp.post("/batch")
@requires(WRITE)
def record_batch():
    """Validate each item on its own; write the valid ones in one transaction."""
    return handle(lambda: _batch(_batch_schema.load(read_body())["metrics"]))


@bp.delete("/<name>")
@requires(WRITE)
def delete_metric(name):
    """Delete a metric and its points; 202 when the points are still being removed."""
    if not NAME_RE.match(name):
        raise ValidationError({"name": [NAME_RULE]})
    app = current_app
    store = get_db(app)
    outcome = store.delete_metric(name, maintenance.background_purger(app, store))
    if outcome is None:
        raise metric_not_found([name])
    metric, deleted, finished = outcome
    body = {"success": True, "metric": name, "type": metric.type, "points_deleted": deleted}
    if finished:
        return jsonify(message="Metric deleted", **body), 200
    return jsonify(message="Metric deleted; its points are being removed", **body), 202
