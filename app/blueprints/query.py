"""GET /api/metrics/aggregate, /api/metrics/<name> and /api/metrics (the list)."""

import csv
import io
import time

from flask import Blueprint, current_app, jsonify, request

from app.api.auth import READ, requires
from app.api.errors import ApiError, metric_not_found
from app.api.schemas import ListQuerySchema, QueryLimits, aggregate_query_schema
from app.core.buckets import series
from app.core.timeutil import isoformat_z, utcnow
from app.db import get_store
from app.db.planner import ResolutionUnavailable
from app.infra import telemetry

bp = Blueprint("query", __name__, url_prefix="/api/metrics")
CSV_CHUNK_BYTES = 64 * 1024

_list_schema = ListQuerySchema()


def _plan(store, params):
    """Which stored data answers the query (raises RESOLUTION_UNAVAILABLE when none can)."""
    try:
        return store.plan(
            params["start"],
            params["end"],
            params["window_seconds"],
            utcnow(),
            use_rollups=params["source"] == "auto",
        )
    except ResolutionUnavailable as exc:
        details = {"start": [str(exc)]}
        if exc.earliest is not None:
            details["earliest"] = [isoformat_z(exc.earliest)]
        raise ApiError("RESOLUTION_UNAVAILABLE", str(exc), details=details) from None


def aggregate(args):
    """Validate the query, plan it, let the store answer it, shape the response."""
    params = aggregate_query_schema(QueryLimits.from_config(current_app.config)).load(args)
    window = params["window_seconds"]
    first, last = params["first"], params["last"]
    store = get_store(current_app)
    query_plan = _plan(store, params)
    started = time.perf_counter()
    answer = store.aggregate(params["names"], params["operation"], window, query_plan)
    telemetry.time_query(time.perf_counter() - started)
    if answer.missing:
        raise metric_not_found(answer.missing)
    results = answer.results
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
    body.update(
        window=params["window"],
        start=isoformat_z(query_plan.start),
        end=isoformat_z(query_plan.end),
    )
    body["resolution"] = query_plan.resolution
    body["data"] = data[found[0].name] if len(found) == 1 else data
    if params["format"] == "csv":
        return _csv(data, query_plan.resolution)
    return jsonify(body)


def _csv_value(value):
    return "" if value is None else str(value)


def _csv(data, resolution):
    """``timestamp,value`` (one column per metric for several names), the same buckets and
    values as the JSON; an empty cell where the JSON says null (or a bucket is left out).
    Written row by row as it is sent, so a large answer is never one string in memory."""
    names = list(data)
    columns = {name: {p["timestamp"]: p["value"] for p in data[name]} for name in names}
    stamps = sorted({p["timestamp"] for series_ in data.values() for p in series_})

    def rows():
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["timestamp", *(names if len(names) > 1 else ["value"])])
        for stamp in stamps:
            writer.writerow([stamp, *(_csv_value(columns[name].get(stamp)) for name in names)])
            if out.tell() > CSV_CHUNK_BYTES:
                yield out.getvalue()
                out.seek(0)
                out.truncate()
        yield out.getvalue()

    response = current_app.response_class(rows(), mimetype="text/csv")
    response.headers["X-Resolution"] = resolution
    return response


def _one_or_by_name(by_name):
    """The common value when every metric shares it, else the mapping name → value."""
    distinct = set(by_name.values())
    return distinct.pop() if len(distinct) == 1 else by_name


@bp.get("/aggregate")
@requires(READ)
def aggregate_many():
    """Bucketed aggregates of one or more comma-separated metric names."""
    args = request.args.to_dict()
    names = request.args.getlist("name") or request.args.getlist("metric")
    if len(names) > 1:  # ?name=a&name=b means the same as ?name=a,b
        args["name"] = ",".join(names)
    return aggregate(args)


@bp.get("/<name>")
@requires(READ)
def aggregate_one(name):
    """The README form: /api/metrics/<name>?aggregation=&interval=&from=&to=."""
    return aggregate({**request.args.to_dict(), "name": name})


@bp.get("")
@requires(READ)
def list_metrics():
    """Metrics ordered by name, optionally by prefix, paginated by limit/offset."""
    params = _list_schema.load(request.args.to_dict())
    rows = get_store(current_app).list_metrics(
        params["prefix"],
        params["limit"] + 1,  # one more tells whether another page exists
        params["offset"],
        params["after"],
    )
    page = [
        {"name": row.name, "type": row.type, "created_at": isoformat_z(row.created_at)}
        for row in rows[: params["limit"]]
    ]
    has_more = len(rows) > params["limit"]
    body = {"success": True, "data": page, "limit": params["limit"], "offset": params["offset"]}
    body["has_more"] = has_more
    if has_more:
        body["next_after"] = page[-1]["name"]
    return jsonify(body)
