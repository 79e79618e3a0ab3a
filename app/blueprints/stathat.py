"""StatHat-compatible ingestion: ``/ez`` (GET query string, POST form or JSON
``{"ezkey", "data": [{"stat", "count" | "value", "t"?}]}``) and the classic ``/c`` and ``/v``
(``key``: a stat key, ``ukey``: an API key). Same writer as the JSON API, same rules.

The key comes from a parameter, not a header, so authentication, the write scope and both
rate limits (per key, and failed authentication per address) are called here explicitly;
the access log never holds a query string. Answers are StatHat's: 200 ``{"status": 200,
"msg": "ok"}`` (204 with ``vb=0``), errors the matching 4xx with ``{"status", "msg"}``. Every
answer closes the connection: one official client declares Content-Length in characters, and
a non-ASCII name makes it send more bytes than that — they must never be read as a request.
"""

from urllib.parse import parse_qsl

from flask import Blueprint, current_app, jsonify, request
from marshmallow import ValidationError

from app.api.auth import (
    authenticate_key,
    count_failed_authentication,
    hash_key,
    refuse_flooding_address,
    require,
)
from app.api.body import parse_json, raw_body
from app.api.errors import ApiError, from_validation_error
from app.api.limits import count_request, spend_points
from app.api.principals import WRITE
from app.api.schemas import PointSchema, load_point
from app.api.writes import write_limits, write_window
from app.core.stathat import STAT_KEY_RE, BadStatName, metric_names
from app.core.timeutil import parse_decimal
from app.db import get_store
from app.ingest import answers
from app.ingest.front_door import get_front_door

bp = Blueprint("stathat", __name__)

_schemas = {"counter": PointSchema("counter"), "value": PointSchema("value")}


def _params():
    """The request's parameters: the query string, then a form or JSON body over it."""
    params = request.args.to_dict()
    if request.method != "POST":
        return params
    body = raw_body()
    text = body.decode("utf-8", errors="replace").strip()
    if text.startswith("{"):
        data = parse_json(text)
        if not isinstance(data, dict):
            raise ApiError("VALIDATION_ERROR", "The body must be a JSON object")
        params.update(data)
    else:  # raw spaces that were never URL-encoded survive parse_qsl as they are
        params.update(parse_qsl(text, keep_blank_values=True))
    return params


def _number(raw, field):
    if raw is None or raw == "":
        return None
    value = parse_decimal(raw) if isinstance(raw, str) else raw
    if value is None:
        raise ApiError(
            "VALIDATION_ERROR", f"{field} must be a number", details={field: ["Must be a number."]}
        )
    return value


def _check_size(count):
    """A request's points after the ~ fan-out count against METRICS_MAX_BATCH."""
    limit = current_app.config["METRICS_MAX_BATCH"]
    if count > limit:
        message = f"BATCH_TOO_LARGE: a request holds at most {limit} points, ~ fan-out included"
        raise ApiError("BATCH_TOO_LARGE", message, details={"stat": [message]})


def _stat_names(stat):
    """The metric names one stat posts to (400 for a missing or unusable name)."""
    if not isinstance(stat, str) or not stat.strip():
        raise ApiError(
            "VALIDATION_ERROR",
            "stat is required",
            details={"stat": ["Missing data for required field."]},
        )
    _check_size(stat.count(",") if "~" in stat else 0)  # the fan-out's size, before it is built
    try:
        return metric_names(stat)
    except BadStatName as exc:
        raise ApiError("VALIDATION_ERROR", str(exc), details={"stat": [str(exc)]}) from None


def _points(items):
    """(stat, kind, number, t) items → Points; a bad stat name or number is a 400."""
    _check_size(len(items))
    expanded = [(_stat_names(stat), kind, number, moment) for stat, kind, number, moment in items]
    _check_size(sum(len(names) for names, *_ in expanded))
    window, points = write_window(), []
    for names, kind, number, moment in expanded:
        for name in names:
            # t: Unix seconds, milliseconds by magnitude, or ISO 8601 — the rule of every route.
            item = {"name": name, "recorded_at": None if moment in (None, "") else moment}
            if number is not None or kind == "value":
                item["value"] = _number(number, kind)
            points.append(load_point(_schemas[kind], item, window))
    return points


def _ez_items(params):
    data = params.get("data")
    if isinstance(data, list):
        return [_ez_item(entry if isinstance(entry, dict) else {}) for entry in data]
    return [_ez_item(params)]


def _ez_item(fields):
    kind = "value" if "value" in fields and "count" not in fields else "counter"
    number = fields.get("value") if kind == "value" else fields.get("count")
    return fields.get("stat"), kind, number, fields.get("t")


def _authenticated(raw_key):
    """The request's API key (which must have the write scope), counted against its limit."""
    api_key = authenticate_key(raw_key or None)
    require(WRITE)
    count_request(api_key)
    return api_key


def _ingest(raw_key, items, params, api_key=None):
    """Authenticate (unless done), count, validate and store; the StatHat answer."""
    if api_key is None:
        api_key = _authenticated(raw_key)
    respond = answers.stathat(write_limits())
    points = _points(items)
    spend_points(api_key, len(points))
    answer = get_front_door(current_app).record(points, respond, None)
    if answer.status == 200 and str(params.get("vb", "")) == "0":
        return current_app.response_class(status=204)
    return jsonify(answer.body), answer.status


@bp.route("/ez", methods=["GET", "POST"])
def ez():
    """StatHat's EZ API: ``ezkey`` (or ``email``) is an API key with the write scope."""
    params = _params()
    return _ingest(params.get("ezkey") or params.get("email"), _ez_items(params), params)


def _classic(kind):
    params = _params()
    stat_key = params.get("key")
    refuse_flooding_address(params.get("ukey"))  # a stat key is a credential too
    named = None
    if isinstance(stat_key, str) and STAT_KEY_RE.match(stat_key):  # else unknown, unlooked-up
        named = get_store(current_app).stat_key_metric(hash_key(stat_key))
    if named is None:
        _unknown_stat_key()
    api_key = _authenticated(params.get("ukey"))
    tenant_id, metric = named
    if tenant_id != api_key.tenant.id:  # another tenant's stat key is as unknown as none
        _unknown_stat_key()
    number = params.get("count" if kind == "counter" else "value")
    items = [(metric, kind, number, params.get("t"))]
    return _ingest(params.get("ukey"), items, params, api_key)


def _unknown_stat_key():
    count_failed_authentication()
    raise ApiError("NOT_FOUND", "unknown stat key", status=404)


@bp.route("/c", methods=["GET", "POST"])
def classic_count():
    """StatHat's classic count: ``key`` (a stat key), ``ukey`` (an API key), ``count``."""
    return _classic("counter")


@bp.route("/v", methods=["GET", "POST"])
def classic_value():
    """StatHat's classic value: ``key``, ``ukey``, ``value``."""
    return _classic("value")


@bp.errorhandler(ApiError)
def _stathat_error(error):
    response = jsonify(status=error.status, msg=error.message)
    response.status_code = error.status
    response.headers.update({k: v for k, v in error.headers.items() if k == "Retry-After"})
    return response


@bp.errorhandler(ValidationError)
def _stathat_validation(error):
    return _stathat_error(from_validation_error(error))


@bp.after_request
def _close(response):
    response.headers["Connection"] = "close"
    return response
