"""GET /api/metrics/aggregate, /api/metrics/<name> and /api/metrics (the list)."""

from datetime import timedelta

from flask import Blueprint, current_app, jsonify, request
from marshmallow import ValidationError

from app.buckets import bucket_range, series
from app.db import get_db, metrics, run_read
from app.db.aggregate import aggregate_metrics
from app.errors import ApiError
from app.schemas import (
    QUERY_ALIASES,
    WINDOWS,
    AggregateQuerySchema,
    ListQuerySchema,
    load_or_raise,
    validation_error,
)
from app.timeutil import isoformat_z, utcnow

bp = Blueprint("query", __name__, url_prefix="/api/metrics")

DEFAULT_SPAN = timedelta(hours=24)
_aggregate_schema = AggregateQuerySchema()
_list_schema = ListQuerySchema()


def _time_range(params):
    end = params["end"] or utcnow()
    try:
        start = params["start"] or end - DEFAULT_SPAN
    except OverflowError:
        message = "end is too early to default start to 24 hours before it"
        raise ApiError("VALIDATION_ERROR", message, details={"end": [message]}) from None
    if start >= end:
        message = "start must be before end"
        raise ApiError("VALIDATION_ERROR", message, details={"start": [message]})
    return start, end


def _check_size(first, last):
    limit = current_app.config["MAX_BUCKETS"]
    count = last - first + 1
    if count > limit:
        raise ApiError(
            "QUERY_TOO_LARGE",
            f"The query spans {count} buckets; at most {limit} are allowed",
            details={"buckets": [f"{count} > {limit}"]},
        )


def _load_query(args):
    """Validate the aggregate query; details name the parameter as the client spelled it."""
    try:
        return _aggregate_schema.load(args)
    except ValidationError as exc:
        spelled = {
            canonical: alias
            for alias, canonical in QUERY_ALIASES.items()
            if alias in args and canonical not in args
        }
        messages = {spelled.get(field, field): text for field, text in exc.messages.items()}
        raise validation_error(ValidationError(messages), "Invalid query") from None


def _not_found(missing):
    quoted = ", ".join(f"'{name}'" for name in missing)
    return ApiError(
        "METRIC_NOT_FOUND", f"No metric named {quoted}", status=404, details={"name": missing}
    )


def aggregate(args):
    """Validate the query, run one GROUP BY per metric, shape the response."""
    params = _load_query(args)
    start, end = _time_range(params)
    window = WINDOWS[params["window"]]
    first, last = bucket_range(start, end, window)
    _check_size(first, last)
    results, missing = run_read(
        get_db(current_app).read,
        aggregate_metrics,
        params["names"],
        params["operation"],
        window,
        start,
        end,
    )
    if missing:
        raise _not_found(missing)
    found = [metric for metric, _, _ in results]
    operations = {metric.name: operation for metric, operation, _ in results}
    data = {
        metric.name: series(values, first, last, window, operation, params["fill"])
        for metric, operation, values in results
    }
    body = {"success": True, "metric": ",".join(m.name for m in found)}
    if len(found) > 1:
        body["metrics"] = [m.name for m in found]
    body["type"] = _one_or_by_name({m.name: m.type for m in found})
    body["operation"] = _one_or_by_name(operations)
    body.update(window=params["window"], start=isoformat_z(start), end=isoformat_z(end))
    body["data"] = data[found[0].name] if len(found) == 1 else data
    return jsonify(body)


def _one_or_by_name(by_name):
    """The common value when every metric shares it, else the mapping name → value."""
    distinct = set(by_name.values())
    return distinct.pop() if len(distinct) == 1 else by_name


@bp.get("/aggregate")
def aggregate_many():
    """Bucketed aggregates of one or more comma-separated metric names."""
    args = request.args.to_dict()
    names = request.args.getlist("name") or request.args.getlist("metric")
    if len(names) > 1:  # ?name=a&name=b means the same as ?name=a,b
        args["name"] = ",".join(names)
    return aggregate(args)


@bp.get("/<name>")
def aggregate_one(name):
    """The README form: /api/metrics/<name>?aggregation=&interval=&from=&to=."""
    return aggregate({**request.args.to_dict(), "name": name})


@bp.get("")
def list_metrics():
    """Metrics ordered by name, optionally by prefix, paginated by limit/offset."""
    params = load_or_raise(_list_schema, request.args.to_dict(), "Invalid query")
    rows = run_read(
        get_db(current_app).read,
        metrics.list_page,
        params["prefix"],
        params["limit"] + 1,  # one more tells whether another page exists
        params["offset"],
    )
    page = [
        {"name": row.name, "type": row.type, "created_at": isoformat_z(row.created_at)}
        for row in rows[: params["limit"]]
    ]
    return jsonify(
        success=True,
        data=page,
        limit=params["limit"],
        offset=params["offset"],
        has_more=len(rows) > params["limit"],
    )
