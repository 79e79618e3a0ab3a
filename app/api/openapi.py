"""The OpenAPI 3.1 document of the whole HTTP contract, built from the marshmallow schemas.

Request bodies and query strings come from ``app.schemas`` through apispec's marshmallow
plugin; what those schemas cannot say (the route fixing a point's type, form bodies, a batch
that is accepted when at least one item is valid, aliases, the empty parameter that means its
default) is added here, and honestly: unknown fields are allowed everywhere, as the service
allows them. Served at ``/openapi.json``; ``docs/openapi.json`` is the same document built
with the default settings (``python -m scripts.openapi`` rewrites it, a test keeps it current).
"""

import json

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from app.api.alerts_openapi import ALERT_SCHEMAS, alert_paths
from app.api.errors import ERROR_CODES
from app.api.key_schemas import KeyChangeSchema, KeyCreateSchema
from app.api.schemas import (
    PARAMETER_FIELDS,
    QUERY_ALIASES,
    AggregateQuerySchema,
    JsonNumber,
    ListQuerySchema,
    PointSchema,
    QueryLimits,
    TagValuesQuerySchema,
    Timestamp,
)
from app.core.constants import (
    DECIMAL_TEXT_PATTERN,
    IDEMPOTENCY_KEY_PATTERN,
    MAX_ABS_VALUE,
    METRIC_TYPES,
    NAME_PATTERN,
    OPERATIONS,
    TIMESTAMP_TEXT_PATTERN,
    WHITESPACE,
)
from app.core.stathat import STAT_PATTERN
from app.core.tags import MAX_GROUP_BY_KEYS, TAG_KEY_PATTERN, TAG_VALUE_PATTERN

TITLE = "Glowing Fiesta"
VERSION = "1.0.0"
DESCRIPTION = (
    "Counters and values over HTTP, read back as time-bucketed sums, averages, minima, maxima "
    "and counts. Every `/api/` route needs an API key (`X-API-Key` or `Authorization: Bearer`) "
    "or, where the server is configured for them, a JWT (`Authorization: Bearer`); its scope "
    "(`read`, `write`, both, or `admin`) decides what it may do, and every metric of its tenant "
    "is visible to it. Bodies are read as JSON whatever the Content-Type says, or as form "
    "fields; unknown fields are ignored. A query parameter sent more than once counts once, "
    "with its first value (`name` and its alias `metric` take several). Errors share one "
    "envelope with a stable `code`. What a schema here cannot say (times relative to now, one "
    "time before another, the size of an answer, a number written as text within its bounds) "
    "is in the descriptions."
)


def ecma(pattern):
    """A Python pattern anchored with ``\\Z`` as JSON Schema (ECMA-262) writes it."""
    return pattern.replace("\\Z", "$")


NAME = {"type": "string", "pattern": NAME_PATTERN, "example": "page.views"}
NUMBER_RULE = "Decimal text (blanks around ignored) of a finite number, |v| ≤ 1e16."
TIME_RULE = (
    "Unix seconds, Unix milliseconds (magnitude ≥ 1e11), or ISO 8601 (offsets honoured, naive "
    "is UTC; a `+` that arrived as a space is read as `+`)."
)
WINDOW_RULE = (
    "Must lie within the last METRICS_MAX_PAST_DAYS days and at most "
    "METRICS_MAX_FUTURE_SECONDS ahead of now (GET /api/limits; else TIMESTAMP_OUT_OF_RANGE)."
)


def _field_properties(converter, field, **kwargs):
    """The JSON Schema of the service's own field types."""
    if isinstance(field, JsonNumber):
        return {"type": "number", "minimum": -MAX_ABS_VALUE, "maximum": MAX_ABS_VALUE}
    if isinstance(field, Timestamp):
        kinds = ["string", "number", "null"] if field.allow_none else ["string", "number"]
        return {"type": kinds, "pattern": TIMESTAMP_TEXT_PATTERN}
    return {}


def _spec():
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title=TITLE,
        version=VERSION,
        openapi_version="3.1.0",
        plugins=[plugin],
        info={"description": DESCRIPTION},
    )
    plugin.converter.add_attribute_function(_field_properties)
    return spec, plugin.converter


def _tags(max_tags):
    """The ``tags`` object as strictly as app/core/tags.py checks it."""
    return {
        "type": ["object", "null"],
        "maxProperties": max_tags,
        "propertyNames": {"pattern": TAG_KEY_PATTERN},
        "additionalProperties": {
            "type": "string",
            "minLength": 1,
            "maxLength": 255,
            "pattern": TAG_VALUE_PATTERN,
        },
        "description": "The point's dimensions: at most METRICS_MAX_TAGS keys "
        "(^[A-Za-z_][A-Za-z0-9_.-]{0,63}$) to values of 1-255 characters without control "
        "characters, ',' or '\\'; form bodies send `tags=k:v,k:v`.",
        "example": {"host": "web-3", "status": "500"},
    }


def _point_body(converter, required, max_tags, with_type=False):
    """A point's JSON body from PointSchema: the route fixes the type unless ``with_type``."""
    schema = converter.schema2jsonschema(PointSchema)
    properties = schema["properties"]
    properties["tags"] = _tags(max_tags)
    if not with_type:
        del properties["type"]
    body = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": True,
    }
    if with_type:
        body["if"] = {"properties": {"type": {"const": "value"}}, "required": ["type"]}
        body["then"] = {"required": ["value"]}
    return body


def _point_form(required):
    """The same point as form fields: text, the value a decimal string (blank: absent)."""
    value = {"type": "string", "pattern": DECIMAL_TEXT_PATTERN, "example": "3"}
    if "value" in required:
        value["description"] = NUMBER_RULE
    else:
        value["pattern"] = f"({DECIMAL_TEXT_PATTERN})|^{WHITESPACE}*\\Z"
        value["description"] = f"{NUMBER_RULE} Blank: absent (a counter counts 1)."
    return {
        "type": "object",
        "properties": {
            "name": NAME,
            "value": value,
            "recorded_at": {
                "type": "string",
                "pattern": TIMESTAMP_TEXT_PATTERN,
                "description": f"{TIME_RULE} Absent: now. {WINDOW_RULE}",
            },
        },
        "required": required,
        "additionalProperties": True,
    }


ENVELOPE = {
    "type": "object",
    "required": ["success", "error"],
    "properties": {
        "success": {"const": False},
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "enum": list(ERROR_CODES)},
                "message": {"type": "string"},
                "details": {"type": "object", "description": "Messages keyed by field."},
            },
        },
    },
}
ITEM_ERROR = {
    "type": "object",
    "required": ["index", "code", "message"],
    "properties": {
        "index": {"type": "integer", "minimum": 0},
        "code": {"type": "string", "enum": list(ERROR_CODES)},
        "message": {"type": "string"},
        "details": {"type": "object"},
    },
}
BATCH_SUMMARY = {
    "accepted": {"type": "integer", "minimum": 0},
    "rejected": {"type": "integer", "minimum": 0},
    "errors": {"type": "array", "items": {"$ref": "#/components/schemas/ItemError"}},
}
SERIES = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["timestamp", "value"],
        "properties": {
            "timestamp": {"type": "string", "example": "2026-11-23T10:00:00Z"},
            "value": {
                "type": ["number", "null"],
                "description": "A whole result is an integer of any size; null: no points.",
            },
        },
    },
}


def _one_or_by_name(schema):
    return {"oneOf": [schema, {"type": "object", "additionalProperties": schema}]}


GROUPS = {
    "type": "array",
    "description": "With group_by: one entry per combination of the keys' values, in top-N "
    "order; with top, a last `other` entry aggregating the rest.",
    "items": {
        "type": "object",
        "required": ["tags", "data"],
        "properties": {
            "tags": {
                "type": ["object", "null"],
                "additionalProperties": {"type": "string"},
                "description": 'Each group_by key\'s value ("" for series without it); '
                "null for the other group.",
            },
            "other": {"const": True},
            "data": SERIES,
            "compare": {
                "type": "object",
                "required": ["offset", "data"],
                "description": "With compare: this group's buckets over the earlier range.",
                "properties": {"offset": {"enum": ["1d", "1w", "4w"]}, "data": SERIES},
            },
        },
    },
}


LIMIT_FIELDS = {
    "tenant": "The tenant this key acts in.",
    "max_batch": "METRICS_MAX_BATCH: items in one batch (and StatHat points after fan-out).",
    "max_buckets": "METRICS_MAX_BUCKETS: buckets one query may return.",
    "max_query_names": "METRICS_MAX_QUERY_NAMES: names one query may name.",
    "max_query_points": "METRICS_MAX_QUERY_POINTS: names × buckets one query may return.",
    "max_metrics": "Metrics the tenant may have (its own limit, else METRICS_MAX_METRICS).",
    "metrics_left": "How many more metrics the tenant may create now.",
    "max_series": "Series the tenant's metrics may have together (its own limit, else "
    "TENANT_MAX_SERIES).",
    "max_series_per_metric": "METRICS_MAX_SERIES_PER_METRIC: series one metric may have.",
    "points_per_minute": "Points the tenant's keys may write a minute together (its own limit, "
    "else TENANT_POINTS_PER_MINUTE; 0: unlimited).",
    "max_past_days": "METRICS_MAX_PAST_DAYS: oldest recorded_at accepted.",
    "max_future_seconds": "METRICS_MAX_FUTURE_SECONDS: furthest recorded_at ahead.",
    "max_content_length": "MAX_CONTENT_LENGTH: request body bytes.",
    "rate_limit": "This key's requests per minute.",
}


def _closed(converter, schema):
    """A body schema that refuses unknown fields, as its marshmallow schema does."""
    body = converter.schema2jsonschema(schema)
    return {**body, "additionalProperties": False}


def _query_body(parameters):
    """POST /api/query's body from the GET route's parameters: the same rules by the same
    names, except `metrics` (the names) and `filters` (the filter strings). A field is left out
    for its default (an empty string is refused); `group_by` is a list of keys or `k1,k2`."""
    properties = {}
    for parameter in parameters:
        name = parameter["name"]
        if name in QUERY_ALIASES:
            continue
        schema = {key: value for key, value in parameter["schema"].items() if key != "default"}
        properties[PARAMETER_FIELDS.get(name, name)] = schema
    properties["group_by"] = {
        "type": ["array", "string"],
        "items": {"type": "string", "pattern": TAG_KEY_PATTERN},
        "maxItems": MAX_GROUP_BY_KEYS,
        "pattern": properties["group_by"]["pattern"],
    }
    properties["top"]["type"] = "integer"
    return {
        "type": "object",
        "required": ["metrics"],
        "additionalProperties": False,
        "description": "The GET route's parameters by their names, except `metrics` (the "
        "names) and `filters` (the filter strings); leave a field out for its default (an empty "
        "string is refused); unknown fields are refused.",
        "properties": properties,
    }


KEY = {
    "type": "object",
    "required": ["id", "prefix", "name", "scopes", "rate_limit", "created_at", "last_used_at",
                 "revoked_at"],
    "properties": {
        "id": {"type": "integer"},
        "prefix": {"type": "string", "description": "The key's loggable start."},
        "name": {"type": "string"},
        "scopes": {"type": "array", "items": {"enum": ["read", "write", "admin"]}},
        "rate_limit": {"type": "integer", "description": "Requests a minute (its own, else "
                       "METRICS_RATE_LIMIT_DEFAULT)."},
        "created_at": {"type": "string", "format": "date-time"},
        "last_used_at": {"type": ["string", "null"], "format": "date-time",
                         "description": "To the minute."},
        "revoked_at": {"type": ["string", "null"], "format": "date-time"},
    },
}  # fmt: skip


RESPONSE_SCHEMAS = {
    "Key": {
        **KEY,
        "required": ["success", *KEY["required"]],
        "properties": {"success": {"const": True}, **KEY["properties"]},
    },
    "KeyCreated": {
        "type": "object",
        "required": ["success", "key", "id", "prefix", "name", "scopes", "rate_limit"],
        "properties": {
            "success": {"const": True},
            "key": {"type": "string", "description": "The raw key, shown only here."},
            **{
                name: KEY["properties"][name]
                for name in ("id", "prefix", "name", "scopes", "rate_limit", "created_at")
            },
        },
    },
    "KeyList": {
        "type": "object",
        "required": ["success", "data"],
        "properties": {"success": {"const": True}, "data": {"type": "array", "items": KEY}},
    },
    **ALERT_SCHEMAS,
    "Error": ENVELOPE,
    "ItemError": ITEM_ERROR,
    "Recorded": {
        "type": "object",
        "required": ["success", "message"],
        "properties": {"success": {"const": True}, "message": {"type": "string"}},
    },
    "Queued": {
        "type": "object",
        "required": ["success", "queued"],
        "properties": {
            "success": {"const": True},
            "queued": {"type": "integer", "minimum": 1},
            **BATCH_SUMMARY,
        },
    },
    "BatchRecorded": {
        "type": "object",
        "required": ["success", "accepted", "rejected", "errors"],
        "properties": {"success": {"const": True}, **BATCH_SUMMARY},
    },
    "BatchRefused": {
        "allOf": [{"$ref": "#/components/schemas/Error"}],
        "properties": BATCH_SUMMARY,
        "description": "The envelope; a batch with no valid item also lists every item's error.",
    },
    "Deleted": {
        "type": "object",
        "required": ["success", "message", "metric", "type", "points_deleted"],
        "properties": {
            "success": {"const": True},
            "message": {"type": "string"},
            "metric": {"type": "string"},
            "type": {"type": "string", "enum": list(METRIC_TYPES)},
            "points_deleted": {"type": "integer", "minimum": 0},
        },
    },
    "Aggregates": {
        "type": "object",
        "required": ["success", "metric", "type", "operation", "window", "start", "end"],
        # `data` per metric; with group_by, `series` per group instead
        "oneOf": [{"required": ["data"]}, {"required": ["group_by", "series"]}],
        "properties": {
            "success": {"const": True},
            "metric": {"type": "string", "description": "The names, comma-separated."},
            "metrics": {"type": "array", "items": {"type": "string"}},
            "type": _one_or_by_name({"type": "string", "enum": list(METRIC_TYPES)}),
            "operation": _one_or_by_name({"type": "string", "enum": list(OPERATIONS)}),
            "window": {"type": "string"},
            "start": {"type": "string"},
            "end": {"type": "string"},
            "resolution": {"type": "string", "enum": ["raw", "minute", "hour"]},
            "filter": {"type": "array", "items": {"type": "string"}},
            "group_by": {"type": "array", "items": {"type": "string"}},
            "data": _one_or_by_name(SERIES),
            "series": _one_or_by_name(GROUPS),
            "tz": {"type": "string", "description": "The time zone of the buckets, when given."},
            "compare": {
                "type": "object",
                "required": ["offset", "data"],
                "description": "With compare (without group_by): the same buckets over the "
                "earlier range, labelled with the earlier times, in the shape of `data`.",
                "properties": {
                    "offset": {"enum": ["1d", "1w", "4w"]},
                    "data": _one_or_by_name(SERIES),
                },
            },
        },
    },
    "TagKeys": {
        "type": "object",
        "required": ["success", "metric", "tags"],
        "properties": {
            "success": {"const": True},
            "metric": {"type": "string"},
            "tags": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["key", "values"],
                    "properties": {
                        "key": {"type": "string"},
                        "values": {"type": "integer", "description": "Distinct values."},
                    },
                },
            },
        },
    },
    "TagValues": {
        "type": "object",
        "required": ["success", "metric", "key", "data", "limit", "offset", "has_more"],
        "properties": {
            "success": {"const": True},
            "metric": {"type": "string"},
            "key": {"type": "string"},
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["value", "series"],
                    "properties": {
                        "value": {"type": "string"},
                        "series": {"type": "integer", "description": "Series with it."},
                    },
                },
            },
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
            "has_more": {"type": "boolean"},
        },
    },
    "MetricPage": {
        "type": "object",
        "required": ["success", "data", "limit", "offset", "has_more"],
        "properties": {
            "success": {"const": True},
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "type", "created_at", "series"],
                    "properties": {
                        "name": {"type": "string"},
                        "type": {"type": "string", "enum": list(METRIC_TYPES)},
                        "created_at": {"type": "string"},
                        "series": {"type": "integer", "description": "Its series count."},
                    },
                },
            },
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
            "has_more": {"type": "boolean"},
            "next_after": {
                "type": "string",
                "description": "With `has_more`: the page's last name, for `after=`.",
            },
        },
    },
    "Limits": {
        "type": "object",
        "required": ["success", *LIMIT_FIELDS],
        "properties": {
            "success": {"const": True},
            **{
                name: {"type": "string" if name == "tenant" else "integer", "description": text}
                for name, text in LIMIT_FIELDS.items()
            },
        },
    },
    "Health": {
        "type": "object",
        "required": ["success", "status"],
        "properties": {"success": {"const": True}, "status": {"type": "string"}},
    },
    "StatHatAnswer": {
        "type": "object",
        "required": ["status", "msg"],
        "properties": {"status": {"type": "integer"}, "msg": {"type": "string"}},
    },
}

EXAMPLES = {
    "Recorded": {"success": True, "message": "Counter metric recorded"},
    "BatchRecorded": {
        "success": True,
        "accepted": 2,
        "rejected": 1,
        "errors": [{"index": 2, "code": "VALIDATION_ERROR", "message": "Invalid request: …"}],
    },
    "Aggregates": {
        "success": True,
        "metric": "page.views",
        "type": "counter",
        "operation": "sum",
        "window": "1h",
        "start": "2026-11-23T00:00:00Z",
        "end": "2026-11-23T02:00:00Z",
        "resolution": "raw",
        "data": [
            {"timestamp": "2026-11-23T00:00:00Z", "value": 42},
            {"timestamp": "2026-11-23T01:00:00Z", "value": 0},
        ],
    },
    "Error": {
        "success": False,
        "error": {
            "code": "VALIDATION_ERROR",
            "message": "Invalid request: name: Missing data for required field.",
            "details": {"name": ["Missing data for required field."]},
        },
    },
}

RATE_HEADERS = {
    "X-RateLimit-Limit": "The key's requests per minute.",
    "X-RateLimit-Remaining": "Requests left in this minute.",
    "X-RateLimit-Reset": "Unix time the window ends.",
}
HEADERS = {
    **{
        name: {"description": text, "schema": {"type": "integer"}}
        for name, text in RATE_HEADERS.items()
    },
    "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}},
    "X-Request-ID": {"description": "Yours, if you sent one.", "schema": {"type": "string"}},
    "X-Resolution": {
        "description": "The CSV answer's resolution.",
        "schema": {"type": "string", "enum": ["raw", "minute", "hour"]},
    },
    "Idempotent-Replayed": {
        "description": "`true` on a replayed answer.",
        "schema": {"type": "string"},
    },
}

ERRORS = {  # status → when
    400: "Invalid request (`VALIDATION_ERROR`, `INVALID_JSON`, …; see the code).",
    401: "No, malformed, unknown or revoked key, or a JWT that does not verify (`UNAUTHORIZED`).",
    403: "The key's (or token's) scope does not allow this (`FORBIDDEN`).",
    404: "No such metric (`METRIC_NOT_FOUND`), or no such API key, alert or route "
    "(`NOT_FOUND`); another tenant's answers the same.",
    409: "The metric has the other type (`METRIC_TYPE_MISMATCH`), or a change names a rule "
    "field the alert's kind has not (`ALERT_KIND_MISMATCH`).",
    413: "The body is over MAX_CONTENT_LENGTH (`PAYLOAD_TOO_LARGE`).",
    422: "This Idempotency-Key was used for another request (`IDEMPOTENCY_KEY_REUSED`), or a "
    "new metric would pass METRICS_MAX_METRICS (`METRIC_LIMIT_EXCEEDED`).",
    429: "Over the key's rate limit, over the tenant's points a minute (the whole request is "
    "refused), or too many failed authentications (`RATE_LIMITED`).",
    503: (
        "The database or the writer is unavailable, or in queue mode Redis or room in its "
        "buffer (`SERVICE_UNAVAILABLE`, with Retry-After)."
    ),
}


def _json(ref, description, headers=None, example=None):
    content = {"schema": {"$ref": f"#/components/schemas/{ref}"}}
    if example is not None or ref in EXAMPLES:
        content["example"] = example if example is not None else EXAMPLES[ref]
    response = {"description": description, "content": {"application/json": content}}
    if headers:
        response["headers"] = {name: {"$ref": f"#/components/headers/{name}"} for name in headers}
    return response


def _errors(*statuses):
    return {
        str(status): _json(
            "Error", ERRORS[status], ["Retry-After"] if status in (429, 503) else None
        )
        for status in statuses
    }


def _stathat_errors(*statuses):
    return {
        str(status): _json("StatHatAnswer", ERRORS[status], example={"status": status, "msg": "…"})
        for status in statuses
    }


KEYED = [{"ApiKey": []}, {"Bearer": []}, {"BearerJWT": []}]
JWT_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "A JWT, where the server sets JWT_SECRET (HS256) or JWT_PUBLIC_KEYS "
    "(RS256/ES256): `iss` and `aud` as configured, `exp`, `sub` (rate-limited per subject), "
    "`tenant` (an existing tenant's name) and `scope` (space-separated `read write admin`).",
}
IDEMPOTENCY = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "description": "Apply this POST at most once per API key (or JWT subject) within 24 hours; "
    "an empty value counts as absent.",
    "schema": {"type": "string", "pattern": f"^({ecma(IDEMPOTENCY_KEY_PATTERN)[1:-1]})?$"},
}
NAME_IN_PATH = {"in": "path", "name": "name", "required": True, "schema": NAME}


def _not_null(schema):
    if schema.get("default", ...) is None:
        del schema["default"]
    if isinstance(schema.get("type"), list):
        schema["type"] = [kind for kind in schema["type"] if kind != "null"]
    if "enum" in schema:
        schema["enum"] = [choice for choice in schema["enum"] if choice is not None]


def _ecma_patterns(node):
    """A copy of ``node`` with every ``pattern`` as ECMA-262 writes it."""
    if isinstance(node, dict):
        return {
            key: ecma(value)
            if key == "pattern" and isinstance(value, str)
            else _ecma_patterns(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_ecma_patterns(value) for value in node]
    return node


def _query(converter, schema, skip=(), bounds=None):
    """Query parameters from a schema: optional ones may be empty (an empty one means its
    default), and each alias is listed with its canonical name's rules (which apply when the
    canonical name is not sent: it wins; parameters are independent in OpenAPI, so the
    document cannot say that). ``bounds``: more schema, by parameter, from the settings."""
    parameters = []
    for parameter in converter.schema2parameters(schema, location="query"):
        if parameter["name"] in skip:
            continue
        parameter["schema"].update((bounds or {}).get(parameter["name"], {}))
        _not_null(parameter["schema"])  # a query string has no null: absent is the default
        if not parameter.get("required"):
            parameter["allowEmptyValue"] = True
        parameters.append(parameter)
    listed = {parameter["name"]: parameter for parameter in parameters}
    for alias, canonical in QUERY_ALIASES.items():
        if canonical in listed:
            schema = {k: v for k, v in listed[canonical]["schema"].items() if k != "default"}
            parameter = {
                **listed[canonical],
                "name": alias,
                "required": False,
                "description": f"Alias of `{canonical}` (ignored when `{canonical}` is sent).",
                "schema": schema,
            }
            parameters.append(parameter)
    return parameters


def _ingest(summary, json_ref, form_ref, recorded, extra_errors=()):
    content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{json_ref}"}}}
    if form_ref:
        content["application/x-www-form-urlencoded"] = {
            "schema": {"$ref": f"#/components/schemas/{form_ref}"}
        }
    return {
        "post": {
            "summary": summary,
            "security": KEYED,
            "parameters": [IDEMPOTENCY],
            "requestBody": {"required": True, "content": content},
            "responses": {
                **recorded,
                "202": _json("Queued", "Queued (INGEST_MODE=queue): in Redis, written shortly."),
                **_errors(400, 401, 403, *extra_errors, 413, 422, 429, 503),
            },
        }
    }


def _aggregate_answers():
    ok = _json("Aggregates", "One series per metric.")
    ok["content"]["text/csv"] = {
        "schema": {"type": "string"},
        "example": "timestamp,value\r\n2026-11-23T00:00:00Z,42\r\n",
    }
    ok["headers"] = {"X-Resolution": {"$ref": "#/components/headers/X-Resolution"}}
    return {"200": ok, **_errors(400, 401, 403, 404, 429, 503)}


def _stathat(summary, names, required, json_body=None):
    """A StatHat route: the same fields by GET (query string) or POST (form, or JSON). On /ez
    ``value`` counts only without ``count``: the form says so, the query string cannot."""
    answers = {
        "200": _json("StatHatAnswer", "Stored.", example={"status": 200, "msg": "ok"}),
        "204": {"description": "Stored (with `vb=0`)."},
        **_stathat_errors(400, 401, 403, 404, 409, 413, 429, 503),
    }
    parameters = [
        {
            "in": "query",
            "name": name,
            "required": name in required,
            "description": STATHAT_FIELDS[name][0],
            "schema": STATHAT_FIELDS[name][1],
        }
        for name in names
    ]
    form = {
        "type": "object",
        "additionalProperties": True,
        "properties": {name: STATHAT_FIELDS[name][1] for name in names},
        "required": required,
    }
    if "count" in names and "value" in names:
        del form["properties"]["value"]
        form["anyOf"] = [{"required": ["count"]}, {"properties": {"value": NUMBER_TEXT}}]
    content = {"application/x-www-form-urlencoded": {"schema": form}}
    if json_body:
        content["application/json"] = {"schema": json_body}
    return {
        "get": {"summary": summary, "parameters": parameters, "responses": answers},
        "post": {
            "summary": summary,
            "requestBody": {"required": True, "content": content},
            "responses": answers,
        },
    }


TEXT = {"type": "string"}
NUMBER_TEXT = {"type": "string", "pattern": DECIMAL_TEXT_PATTERN, "example": "1"}
STAT = {"type": "string", "pattern": STAT_PATTERN, "example": "page views"}
TIME_RULE_STATHAT = f"{TIME_RULE} Empty: now. {WINDOW_RULE}"
STATHAT_FIELDS = {  # name → (description, schema)
    "ezkey": ("An API key with the write scope (alias `email`).", TEXT),
    "email": ("Alias of `ezkey`.", TEXT),
    "ukey": ("An API key with the write scope.", TEXT),
    "key": ("A stat key (`flask metrics stat-key NAME`).", TEXT),
    "stat": (
        "A StatHat name, mapped to a metric name (see the README): trimmed, each run of "
        "characters outside the name alphabet becomes `_`, and the result must be 1–255 "
        "characters. `~` fans out (`a~b,c`: `a b` and `a c`; at most METRICS_MAX_BATCH names).",
        STAT,
    ),
    "count": (f"A counter's increment (default 1). {NUMBER_RULE}", NUMBER_TEXT),
    "value": (f"A value (on /ez, ignored when `count` is sent). {NUMBER_RULE}", NUMBER_TEXT),
    "t": (
        TIME_RULE_STATHAT,
        {"type": "string", "pattern": f"({TIMESTAMP_TEXT_PATTERN})|^\\Z"},
    ),
    "vb": ("`0` answers 204 instead of 200.", TEXT),
}


def _ez_json(config):
    """/ez's JSON body: numbers as JSON numbers or decimal text, `value` only without
    `count`; at most METRICS_MAX_BATCH items."""
    number = {
        "type": ["number", "string"],
        "minimum": -MAX_ABS_VALUE,
        "maximum": MAX_ABS_VALUE,
        "pattern": DECIMAL_TEXT_PATTERN,
        "description": "A JSON number, |v| ≤ 1e16, or decimal text of one (blanks around ignored).",
    }
    return {
        "type": "object",
        "required": ["data"],
        "additionalProperties": True,
        "properties": {
            "ezkey": TEXT,
            "data": {
                "type": "array",
                "maxItems": config["METRICS_MAX_BATCH"],
                "items": {
                    "type": "object",
                    "description": "`count` makes a counter point (1 when absent or null), "
                    "`value` without `count` a value point.",
                    "required": ["stat"],
                    "properties": {
                        "stat": STAT,
                        "count": {**number, "type": ["number", "string", "null"]},
                        "t": {
                            "type": ["number", "string", "null"],
                            "pattern": f"({TIMESTAMP_TEXT_PATTERN})|^\\Z",
                            "description": TIME_RULE_STATHAT,
                        },
                    },
                    "anyOf": [{"required": ["count"]}, {"properties": {"value": number}}],
                },
            },
        },
    }


def document(config):
    """The OpenAPI document (a dict) for an app's ``config``."""
    spec, converter = _spec()
    schemas = {
        "CounterPoint": _point_body(converter, ["name"], config["METRICS_MAX_TAGS"]),
        "ValuePoint": _point_body(converter, ["name", "value"], config["METRICS_MAX_TAGS"]),
        "BatchItem": _point_body(
            converter, ["name", "type"], config["METRICS_MAX_TAGS"], with_type=True
        ),
        "CounterForm": _point_form(["name"]),
        "ValueForm": _point_form(["name", "value"]),
        "Batch": {
            "type": "object",
            "required": ["metrics"],
            "additionalProperties": True,
            "properties": {
                "metrics": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": config["METRICS_MAX_BATCH"],
                    "description": "Each item is validated on its own: the valid ones are "
                    "written in one transaction and the others listed in `errors`; at least "
                    "one must be a valid BatchItem.",
                    "items": {},
                    "contains": {"$ref": "#/components/schemas/BatchItem"},
                }
            },
            "example": {
                "metrics": [
                    {"name": "page.views", "type": "counter"},
                    {"name": "response.time.ms", "type": "value", "value": 98.2},
                ]
            },
        },
        **RESPONSE_SCHEMAS,  # apispec keeps a copy of each
    }
    for name, schema in schemas.items():
        spec.components.schema(name, schema)
    for name, header in HEADERS.items():
        spec.components.header(name, header)
    spec.components.security_scheme(
        "ApiKey", {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    )
    spec.components.security_scheme("Bearer", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme("BearerJWT", JWT_SCHEME)

    created = {"201": _json("Recorded", "Committed.", ["X-RateLimit-Limit"])}
    spec.path(
        "/api/metrics/counter",
        operations=_ingest("Add to a counter", "CounterPoint", "CounterForm", created, [409]),
    )
    spec.path(
        "/api/metrics/value",
        operations=_ingest("Record a value", "ValuePoint", "ValueForm", created, [409]),
    )
    spec.path(
        "/api/metrics/batch",
        operations=_ingest(
            "Record a batch",
            "Batch",
            None,
            {
                "201": _json("BatchRecorded", "The valid items are committed."),
                "400": _json("BatchRefused", ERRORS[400]),
            },
        ),
    )
    aggregate = AggregateQuerySchema(QueryLimits.from_config(config))
    aggregate_parameters = _query(
        converter,
        aggregate,
        # a name given twice counts once: a list that repeats one may be longer
        bounds={"name": {"maxItems": config["METRICS_MAX_QUERY_NAMES"]}},
    )
    spec.path(
        "/api/metrics/aggregate",
        operations={
            "get": {
                "summary": "Bucketed aggregates of one or more metrics",
                "security": KEYED,
                "parameters": aggregate_parameters,
                "responses": _aggregate_answers(),
            }
        },
    )
    spec.path(
        "/api/metrics/{name}",
        operations={
            "get": {
                "summary": "Bucketed aggregates of one metric",
                "security": KEYED,
                "parameters": [NAME_IN_PATH, *_query(converter, aggregate, skip={"name"})],
                "responses": _aggregate_answers(),
            },
            "delete": {
                "summary": "Delete a metric and its points",
                "security": KEYED,
                "parameters": [NAME_IN_PATH],
                "responses": {
                    "200": _json("Deleted", "Deleted, points included."),
                    "202": _json("Deleted", "Deleted; the remaining points go in the background."),
                    **_errors(400, 401, 403, 404, 429, 503),
                },
            },
        },
    )
    spec.path(
        "/api/metrics",
        operations={
            "get": {
                "summary": "List metrics by name",
                "security": KEYED,
                "parameters": _query(converter, ListQuerySchema()),
                "responses": {
                    "200": _json("MetricPage", "One page, ordered by name."),
                    **_errors(400, 401, 403, 429, 503),
                },
            }
        },
    )
    spec.path(
        "/api/limits",
        operations={
            "get": {
                "summary": "The limits that apply to the calling key",
                "security": KEYED,
                "responses": {
                    "200": _json("Limits", "The limits, one field each."),
                    **_errors(401, 429, 503),
                },
            }
        },
    )
    name_and_key = [
        NAME_IN_PATH,
        {"in": "path", "name": "key", "required": True, "schema": {"type": "string",
         "pattern": TAG_KEY_PATTERN}},
    ]  # fmt: skip
    spec.path(
        "/api/metrics/{name}/tags",
        operations={
            "get": {
                "summary": "A metric's tag keys, each with its count of distinct values",
                "security": KEYED,
                "parameters": [NAME_IN_PATH],
                "responses": {"200": _json("TagKeys", "By key."), **_errors(400, 401, 403, 404,
                              429, 503)},
            }
        },
    )  # fmt: skip
    spec.path(
        "/api/metrics/{name}/tags/{key}",
        operations={
            "get": {
                "summary": "One tag key's values, each with its count of series",
                "security": KEYED,
                "parameters": [*name_and_key, *_query(converter, TagValuesQuerySchema())],
                "responses": {"200": _json("TagValues", "In byte order, one page."),
                              **_errors(400, 401, 403, 404, 429, 503)},
            }
        },
    )  # fmt: skip
    key_id = {"in": "path", "name": "key_id", "required": True, "schema": {"type": "integer"}}
    spec.path(
        "/api/keys",
        operations={
            "post": {
                "summary": "Create an API key in the caller's tenant (admin)",
                "security": KEYED,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": _closed(converter, KeyCreateSchema)}
                    },
                },
                "responses": {
                    "201": _json("KeyCreated", "Created; `key` is shown only in this answer."),
                    **_errors(400, 401, 403, 413, 429, 503),
                },
            },
            "get": {
                "summary": "The caller's tenant's API keys (admin)",
                "security": KEYED,
                "responses": {
                    "200": _json("KeyList", "Oldest first, revoked ones included."),
                    **_errors(401, 403, 429, 503),
                },
            },
        },
    )
    spec.path(
        "/api/keys/{key_id}",
        operations={
            "patch": {
                "summary": "Change a key's scope and/or rate limit (admin)",
                "security": KEYED,
                "parameters": [key_id],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {**_closed(converter, KeyChangeSchema), "minProperties": 1}
                        }
                    },
                },
                "responses": {
                    "200": _json("Key", "Changed; every server applies it within 5 s."),
                    **_errors(400, 401, 403, 404, 413, 429, 503),
                },
            },
            "delete": {
                "summary": "Revoke a key (admin)",
                "security": KEYED,
                "parameters": [key_id],
                "responses": {
                    "200": _json("Key", "Revoked; every server refuses it within 5 s."),
                    **_errors(401, 403, 404, 429, 503),
                },
            },
        },
    )
    filter_item = next(p for p in aggregate_parameters if p["name"] == "filter")["schema"]["items"]
    for path, operations in alert_paths(
        filter_item, _json, _errors, KEYED, NAME, with_test=True
    ).items():
        spec.path(path, operations=operations)
    spec.path(
        "/api/query",
        operations={
            "post": {
                "summary": "The aggregate query as a JSON body (long filter lists, dashboards)",
                "security": KEYED,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _query_body(aggregate_parameters)}},
                },
                "responses": _aggregate_answers(),
            }
        },
    )
    ez_fields = ["ezkey", "email", "stat", "count", "value", "t", "vb"]
    spec.path("/ez", operations=_stathat("StatHat EZ API", ez_fields, ["stat"], _ez_json(config)))
    spec.path(
        "/c",
        operations=_stathat("StatHat classic count", ["key", "ukey", "count", "t", "vb"], ["key"]),
    )
    spec.path(
        "/v",
        operations=_stathat(
            "StatHat classic value", ["key", "ukey", "value", "t", "vb"], ["key", "value"]
        ),
    )
    spec.path(
        "/health",
        operations={
            "get": {"summary": "The process is up", "responses": {"200": _json("Health", "Up.")}}
        },
    )
    spec.path(
        "/ready",
        operations={
            "get": {
                "summary": "Every dependency answers",
                "responses": {
                    "200": _json("Health", "Ready; `checks`, `queue` and `maintenance` detail."),
                    "503": _json("Error", "A dependency does not answer; `details` names it."),
                },
            }
        },
    )
    spec.path(
        "/metrics",
        operations={
            "get": {
                "summary": "The service's own figures (Prometheus text format)",
                "responses": {
                    "200": {
                        "description": "Prometheus exposition.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "404": _json("Error", "METRICS_ENDPOINT_ENABLED is off."),
                },
            }
        },
    )
    spec.path(
        "/openapi.json",
        operations={
            "get": {
                "summary": "This document",
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    )
    spec.path(
        "/",
        operations={
            "get": {
                "summary": "The chart page",
                "responses": {
                    "200": {
                        "description": "HTML.",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    )
    return _ecma_patterns(spec.to_dict())


def render(config):
    """The document as the text /openapi.json serves and docs/openapi.json holds."""
    return json.dumps(document(config), indent=2, ensure_ascii=False) + "\n"
