"""GET /api/metrics/aggregate, /api/metrics/<name> and /api/metrics (the list)."""

import csv
import functools
import io
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

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
from app.core.buckets import bucket_range, labelled_series, series
from app.core.constants import PERCENTILES
from app.core.tags import column_header, group_tags
from app.core.timeutil import EPOCH, isoformat_z, utcnow
from app.core.zones import bucket_indexes
from app.db import get_store
from app.db.aggregate import TooManyPoints
from app.db.dimensions import OTHER
from app.db.planner import ResolutionUnavailable
from app.db.rollups import Partial
from app.infra import telemetry

bp = Blueprint("query", __name__, url_prefix="/api/metrics")
CSV_CHUNK_BYTES = 64 * 1024

_list_schema = ListQuerySchema()


def _plan(store, params, start, end, window_seconds):
    """Which stored data answers the query (raises RESOLUTION_UNAVAILABLE when none can)."""
    try:
        use_rollups = params["source"] == "auto"
        return store.plan(start, end, window_seconds, utcnow(), use_rollups, params["operation"])
    except ResolutionUnavailable as exc:
        details = {"start": [str(exc)]}
        if exc.earliest is not None:
            details["earliest"] = [isoformat_z(exc.earliest)]
        raise ApiError("RESOLUTION_UNAVAILABLE", str(exc), details=details) from None


@dataclass
class Run:
    """One range's answer: the plan, the store's answers and how to list a metric's buckets
    (``points``: {bucket: value} → [{timestamp, value}])."""

    plan: object
    answers: list
    points: object


def _run(store, params, preparation, start, end, orders=None):
    """Answer [start, end). Without a zone, buckets are UTC epoch multiples computed in SQL; in
    one, the store answers slots of the coarsest grain every bucket edge is a multiple of (an
    hour, or a minute for zones offset by 30 or 45 minutes), merged exactly into the local
    buckets."""
    bucketing, window = params["bucketing"], params["window_seconds"]
    operation, top, fill = params["operation"], params["top"], params["fill"]
    if bucketing.tz is None:
        query_plan = _plan(store, params, start, end, window)
        answers = store.aggregate(preparation, operation, window, query_plan, top, orders=orders)
        first, last = bucket_range(start, end, window)

        def points(values, chosen):
            return series(values, first, last, window, chosen, fill)

        return Run(query_plan, answers, points)
    edges = bucketing.edges(start, end)
    slot = bucketing.base_slot_seconds(edges)
    query_plan = _plan(store, params, start, end, slot)
    fold = functools.partial(_fold, edges, slot)
    answers = store.aggregate(preparation, operation, slot, query_plan, top, fold, orders)
    labels = [bucketing.label(edge) for edge in edges[:-1]]

    def points(values, chosen):
        return labelled_series(values, labels, chosen, fill)

    return Run(query_plan, answers, points)


def _fold(edges, slot_seconds, partials):
    """{slot index: Partial} → {bucket position: Partial}, each slot merged into its bucket."""
    slots = sorted(partials)
    starts = [EPOCH + timedelta(seconds=index * slot_seconds) for index in slots]
    merged = {}
    for index, position in zip(slots, bucket_indexes(edges, starts), strict=True):
        if position is not None:
            merged.setdefault(position, Partial()).merge(partials[index])
    return merged


def _orders(answers):
    """Per metric, the group keys of a grouped answer in its order (None without group_by)."""
    return [
        None if isinstance(found, dict) else [key for key, _ in found] for _, _, found in answers
    ]


def aggregate(args):
    """Validate the query, size it, plan it, let the store answer it, shape the response."""
    limits = QueryLimits.from_config(current_app.config)
    params = aggregate_query_schema(limits).load(args)
    store = get_store(current_app)
    preparation = store.prepare(tenant_id(), params["names"], params["filters"], params["group_by"])
    if preparation.missing:
        raise metric_not_found(preparation.missing)
    _check_percentile(params["operation"], preparation)
    if params["group_by"] and params["top"] is None:  # the groups are known now: size again
        groups = max(prepared.group_count for prepared in preparation.prepared)
        limits.check(len(params["names"]), groups, params["buckets"])
    started = time.perf_counter()
    try:
        run = _run(store, params, preparation, params["start"], params["end"])
        earlier = None
        if params["compare_range"] is not None:
            orders = _orders(run.answers)
            earlier = _run(store, params, preparation, *params["compare_range"], orders)
    except TooManyPoints as exc:
        raise ApiError("QUERY_TOO_LARGE", str(exc), details={"source": [str(exc)]}) from None
    telemetry.time_query(time.perf_counter() - started)
    shaped = {
        metric.name: _shape(params, run, index, earlier)
        for index, (metric, _, _) in enumerate(run.answers)
    }
    if params["format"] == "csv":
        return _csv(shaped, params["group_by"], run.plan.resolution, params["compare"])
    return jsonify(_body(params, run, shaped))


def _check_percentile(operation, preparation):
    """A percentile is of value metrics only: a counter's → VALIDATION_ERROR."""
    if operation not in PERCENTILES:
        return
    counters = [p.metric.name for p in preparation.prepared if p.metric.type != "value"]
    if counters:
        message = f"{operation} is a percentile of value metrics; {', '.join(counters)} "
        message += "counts" if len(counters) == 1 else "count"
        raise ApiError("VALIDATION_ERROR", message, details={"operation": [message]})


def _shape(params, run, index, earlier):
    """A metric's buckets as the answer lists them: [{timestamp, value}], or with group_by
    [{"tags", "data"}] (the other group: {"tags": null, "other": true, "data"}); with compare,
    (data, compared data), and each group has its "compare" beside its "data"."""
    _, operation, found = run.answers[index]
    compared = None if earlier is None else earlier.answers[index][2]
    if not params["group_by"]:
        data = run.points(found, operation)
        return data if earlier is None else (data, earlier.points(compared, operation))
    groups = []
    for position, (key, values) in enumerate(found):
        group = _group(params["group_by"], key, run.points(values, operation))
        if earlier is not None:
            data = earlier.points(compared[position][1], operation)
            group["compare"] = {"offset": params["compare"], "data": data}
        groups.append(group)
    return groups


def _group(keys, key, data):
    if key is OTHER:
        return {"tags": None, "other": True, "data": data}
    return {"tags": group_tags(keys, key), "data": data}


def _body(params, run, shaped):
    answers, query_plan = run.answers, run.plan
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
    if params["tz"] is not None:
        body["tz"] = params["tz"]
    if params["filters"]:
        body["filter"] = [f"{f.key}{f.op}{f.operand}" for f in params["filters"]]
    if params["group_by"]:
        body["group_by"] = list(params["group_by"])
        body["series"] = shaped[found[0].name] if len(found) == 1 else shaped
        return body
    compared = params["compare"] is not None
    data = {name: pair[0] for name, pair in shaped.items()} if compared else shaped
    body["data"] = data[found[0].name] if len(found) == 1 else data
    if compared:
        earlier = {name: pair[1] for name, pair in shaped.items()}
        body["compare"] = {
            "offset": params["compare"],
            "data": earlier[found[0].name] if len(found) == 1 else earlier,
        }
    return body


def _csv_value(value):
    return "" if value is None else str(value)


def _columns(shaped, group_by, compare):
    """[(header, [{timestamp, value}])] of a CSV answer: one per metric, or one per group;
    with compare, each followed by its compared column, "<header> (compare <offset>)"."""
    names = list(shaped)
    columns = []
    if not group_by:
        heads = names if len(names) > 1 else ["value"]
        for head, name in zip(heads, names, strict=True):
            if compare is None:
                columns.append((head, shaped[name]))
            else:
                data, earlier = shaped[name]
                columns += [(head, data), (f"{head} (compare {compare})", earlier)]
        return columns
    for name in names:
        for group in shaped[name]:
            qualifier = None if len(names) == 1 else name
            if group["tags"] is None:
                head = "other" if qualifier is None else f"{name}{{other}}"
            else:
                tags = group["tags"]
                head = column_header(group_by, [tags[k] for k in group_by], qualifier)
            columns.append((head, group["data"]))
            if compare is not None:
                columns.append((f"{head} (compare {compare})", group["compare"]["data"]))
    return columns


def _csv(shaped, group_by, resolution, compare=None):
    """``timestamp,value`` (one column per metric for several names, one per group with
    group_by; with compare, each column's compared one beside it), the same buckets and values
    as the JSON; an empty cell where the JSON says null (or a bucket is left out). Rows are
    the buckets' timestamps in time order (a compared column's at its earlier times). Written
    row by row as it is sent, so a large answer is never one string in memory."""
    columns = _columns(shaped, group_by, compare)
    cells = [{p["timestamp"]: p["value"] for p in data} for _, data in columns]
    stamps = sorted({stamp for column in cells for stamp in column}, key=_instant)

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


def _instant(stamp):
    """A timestamp's instant (…Z, or local with its offset: the hour read twice when clocks go
    back sorts in order)."""
    return datetime.fromisoformat(stamp)


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
