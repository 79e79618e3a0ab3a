"""GET /api/metrics/aggregate, /api/metrics/<name> and /api/metrics (the list)."""

import csv
import io
import time

from flask import Blueprint, current_app, jsonify, request
from marshmallow import ValidationError

from app.api.auth import requires, tenant_id
from app.api.body import read_body
from app.api.errors import ApiError, metric_not_found
from app.api.principals import READ
from app.api.schemas import (
    PARAMETER_FIELDS,
    ListQuerySchema,
    QueryBodySchema,
    QueryLimits,
    aggregate_query_schema,
    query_args,
)
from app.core.buckets import series
from app.core.tags import column_header, group_tags
from app.core.timeutil import isoformat_z, utcnow
from app.db import get_store
from app.db.dimensions import OTHER
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
    """Validate the query, size it, plan it, let the store answer it, shape the response."""
    limits = QueryLimits.from_config(current_app.config)
    params = aggregate_query_schema(limits).load(args)
    store = get_store(current_app)
    preparation = store.prepare(tenant_id(), params["names"], params["filters"], params["group_by"])
    if preparation.missing:
        raise metric_not_found(preparation.missing)
    if params["group_by"] and params["top"] is None:  # the groups are known now: size again
        groups = max(prepared.group_count for prepared in preparation.prepared)
        limits.check(len(params["names"]), groups, params["last"] - params["first"] + 1)
    query_plan = _plan(store, params)
    started = time.perf_counter()
    answers = store.aggregate(
        preparation, params["operation"], params["window_seconds"], query_plan, params["top"]
    )
    telemetry.time_query(time.perf_counter() - started)
    shaped = {metric.name: _shape(params, found, operation) for metric, operation, found in answers}
    if params["format"] == "csv":
        return _csv(shaped, params["group_by"], query_plan.resolution)
    return jsonify(_body(params, answers, shaped, query_plan))


def _shape(params, found, operation):
    """A metric's buckets as the answer lists them: [{timestamp, value}], or with group_by
    [{"tags", "data"}] (the other group: {"tags": null, "other": true, "data"})."""
    window, first, last = params["window_seconds"], params["first"], params["last"]

    def points(values):
        return series(values, first, last, window, operation, params["fill"])

    if not params["group_by"]:
        return points(found)
    return [_group(params["group_by"], key, points(values)) for key, values in found]


def _group(keys, key, data):
    if key is OTHER:
        return {"tags": None, "other": True, "data": data}
    return {"tags": group_tags(keys, key), "data": data}


def _body(params, answers, shaped, query_plan):
    found = [metric for metric, _, _ in answers]
    body = {"success": True, "metric": ",".join(m.name for m in found)}
    if len(found) > 1:
        body["metrics"] = [m.name for m in found]
    body["type"] = _one_or_by_name({m.name: m.type for m in found})
    body["operation"] = _one_or_by_name({m.name: operation for m, operation, _ in answers})
    body.update(
        window=params["window"],
        start=isoformat_z(query_plan.start),
        end=isoformat_z(query_plan.end),
        resolution=query_plan.resolution,
    )
    if params["filters"]:
        body["filter"] = [f"{f.key}{f.op}{f.operand}" for f in params["filters"]]
    by_name = shaped[found[0].name] if len(found) == 1 else shaped
    if params["group_by"]:
        body["group_by"] = list(params["group_by"])
        body["series"] = by_name
    else:
        body["data"] = by_name
    return body


def _csv_value(value):
    return "" if value is None else str(value)


def _columns(shaped, group_by):
    """[(header, [{timestamp, value}])] of a CSV answer: one per metric, or one per group."""
    names = list(shaped)
    if not group_by:
        heads = names if len(names) > 1 else ["value"]
        return list(zip(heads, (shaped[name] for name in names), strict=True))
    columns = []
    for name in names:
        for group in shaped[name]:
            qualifier = None if len(names) == 1 else name
            if group["tags"] is None:
                head = "other" if qualifier is None else f"{name}{{other}}"
            else:
                tags = group["tags"]
                head = column_header(group_by, [tags[k] for k in group_by], qualifier)
            columns.append((head, group["data"]))
    return columns


def _csv(shaped, group_by, resolution):
    """``timestamp,value`` (one column per metric for several names, one per group with
    group_by), the same buckets and values as the JSON; an empty cell where the JSON says
    null (or a bucket is left out). Written row by row as it is sent, so a large answer is
    never one string in memory."""
    columns = _columns(shaped, group_by)
    cells = [{p["timestamp"]: p["value"] for p in data} for _, data in columns]
    stamps = sorted({stamp for column in cells for stamp in column})

    def rows():
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["timestamp", *(head for head, _ in columns)])
        for stamp in stamps:
            writer.writerow([stamp, *(_csv_value(column.get(stamp)) for column in cells)])
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
    args = _args()
    names = request.args.getlist("name") or request.args.getlist("metric")
    if len(names) > 1:  # ?name=a&name=b means the same as ?name=a,b
        args["name"] = ",".join(names)
    return aggregate(args)


def _args():
    """The query string as the schema reads it: ``filter`` may repeat."""
    args = request.args.to_dict()
    if "filter" in args:
        args["filter"] = request.args.getlist("filter")
    return args


@bp.get("/<name>")
@requires(READ)
def aggregate_one(name):
    """The README form: /api/metrics/<name>?aggregation=&interval=&from=&to=."""
    return aggregate({**_args(), "name": name})


@bp.get("")
@requires(READ)
def list_metrics():
    """Metrics ordered by name, optionally by prefix, paginated by limit/offset."""
    params = _list_schema.load(request.args.to_dict())
    rows = get_store(current_app).list_metrics(
        tenant_id(),
        params["prefix"],
        params["limit"] + 1,  # one more tells whether another page exists
        params["offset"],
        params["after"],
    )
    rows = rows[: params["limit"] + 1]
    counts = get_store(current_app).series_counts([row.id for row in rows[: params["limit"]]])
    page = [
        {
            "name": row.name,
            "type": row.type,
            "created_at": isoformat_z(row.created_at),
            "series": counts.get(row.id, 0),
        }
        for row in rows[: params["limit"]]
    ]
    has_more = len(rows) > params["limit"]
    body = {"success": True, "data": page, "limit": params["limit"], "offset": params["offset"]}
    body["has_more"] = has_more
    if has_more:
        body["next_after"] = page[-1]["name"]
    return jsonify(body)


posted = Blueprint("posted_query", __name__, url_prefix="/api")
_body_schema = QueryBodySchema()


@posted.post("/query")
@requires(READ)
def query():
    """The GET routes' query as a JSON body: the same engine and answer."""
    body = _body_schema.load(read_body())
    try:
        return aggregate(query_args(body))
    except ValidationError as error:  # name a bad one as the body did
        if isinstance(error.messages, dict):
            renamed = {
                PARAMETER_FIELDS.get(field, field): text for field, text in error.messages.items()
            }
            raise ValidationError(renamed) from None
        raise
