"""Writes: POST /api/metrics/counter, /value and /batch, and DELETE /api/metrics/<name>."""

import re

from flask import Blueprint, current_app, jsonify
from marshmallow import ValidationError

from app.api.auth import requires, tenant_id
from app.api.body import read_body
from app.api.errors import ApiError, from_validation_error, metric_not_found
from app.api.principals import WRITE
from app.api.schemas import BatchSchema, PointSchema, load_point
from app.api.writes import handle, write_limits, write_window
from app.core.constants import NAME_PATTERN, NAME_RULE
from app.db import get_store
from app.ingest import answers
from app.jobs import maintenance

bp = Blueprint("ingest", __name__, url_prefix="/api/metrics")
NAME_RE = re.compile(NAME_PATTERN)

_counter_schema = PointSchema("counter")
_value_schema = PointSchema("value")
_item_schema = PointSchema()
_batch_schema = BatchSchema()


def _one_point(schema, message):
    """Parse a one-point body: the point and the answer rule for it."""
    point = load_point(schema, read_body(), write_window())
    return [point], answers.one_point(point, message, write_limits())


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
    """A batch item refused by validation, as the answer lists it."""
    return answers.item_error(index, from_validation_error(exc, "Invalid request"))


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


def _batch(items):
    """Parse a batch body: its valid points and the answer rule for them."""
    limit = current_app.config["METRICS_MAX_BATCH"]
    if len(items) > limit:
        raise ApiError(
            "BATCH_TOO_LARGE",
            f"A batch holds at most {limit} metrics, got {len(items)}",
            details={"metrics": [f"At most {limit} items."]},
        )
    points, indexes, item_errors = _load_items(items)
    if not points:
        summary = {"accepted": 0, "rejected": len(item_errors), "errors": item_errors}
        raise answers.nothing_valid(summary)
    return points, answers.batch(points, indexes, item_errors, write_limits())


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
    store = get_store(app)
    outcome = store.delete_metric(tenant_id(), name, maintenance.background_purger(app, store))
    if outcome is None:
        raise metric_not_found([name])
    metric, deleted, finished = outcome
    body = {"success": True, "metric": name, "type": metric.type, "points_deleted": deleted}
    if finished:
        return jsonify(message="Metric deleted", **body), 200
    return jsonify(message="Metric deleted; its points are being removed", **body), 202
