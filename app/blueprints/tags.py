"""GET /api/metrics/<name>/tags and /api/metrics/<name>/tags/<key>: a metric's tag keys and
values, answered from the series catalogue (never from points)."""

import re

from flask import Blueprint, current_app, jsonify, request
from marshmallow import ValidationError

from app.api.auth import requires, tenant_id
from app.api.errors import metric_not_found
from app.api.principals import READ
from app.api.schemas import TagValuesQuerySchema
from app.core.constants import NAME_PATTERN, NAME_RULE
from app.core.tags import KEY_RULE, TAG_KEY_PATTERN
from app.db import get_store

bp = Blueprint("tags", __name__, url_prefix="/api/metrics")
_NAME_RE = re.compile(NAME_PATTERN)
_KEY_RE = re.compile(TAG_KEY_PATTERN)
_values_schema = TagValuesQuerySchema()


def _metric(name):
    """The live metric ``name`` (400 for a malformed name, 404 for a missing one)."""
    if not _NAME_RE.match(name):
        raise ValidationError({"name": [NAME_RULE]})
    metric = get_store(current_app).metric(tenant_id(), name)
    if metric is None:
        raise metric_not_found([name])
    return metric


@bp.get("/<name>/tags")
@requires(READ)
def tag_keys(name):
    """The metric's tag keys, each with how many distinct values it has."""
    metric = _metric(name)
    keys = get_store(current_app).tag_keys(metric)
    tags = [{"key": key, "values": count} for key, count in keys]
    return jsonify(success=True, metric=metric.name, tags=tags)


@bp.get("/<name>/tags/<key>")
@requires(READ)
def tag_values(name, key):
    """One tag key's values in byte order, each with how many series carry it; paged."""
    metric = _metric(name)
    if not _KEY_RE.match(key):
        raise ValidationError({"key": [f"A tag key {KEY_RULE}."]})
    params = _values_schema.load(request.args.to_dict())
    limit, offset = params["limit"], params["offset"]
    rows = get_store(current_app).tag_values(metric, key, params["prefix"], limit + 1, offset)
    page = [{"value": value, "series": count} for value, count in rows[:limit]]
    return jsonify(
        success=True,
        metric=metric.name,
        key=key,
        data=page,
        limit=limit,
        offset=offset,
        has_more=len(rows) > limit,
    )
