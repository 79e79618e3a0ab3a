"""The /api/alerts part of the OpenAPI document, written by hand: a new alert's body is one of
three closed objects, one per kind, which the marshmallow schema checks in code."""

from app.core.alerts import (
    ALERT_WINDOWS,
    COMPARES,
    CONDITIONS,
    DIRECTIONS,
    EMAIL_PATTERN,
    MAX_PERCENT,
    MAX_REPEAT_MINUTES,
    MAX_TARGET_LENGTH,
    MAX_TARGETS,
    STATES,
    WEBHOOK_PATTERN,
)
from app.core.constants import MAX_ABS_VALUE, OPERATIONS

TARGET = {
    "type": "string",
    "maxLength": MAX_TARGET_LENGTH,
    "anyOf": [{"pattern": WEBHOOK_PATTERN}, {"pattern": EMAIL_PATTERN}],
    "description": "`webhook:<http(s) URL>` (a signed JSON POST) or `email:<address>` (plain "
    "text through SMTP_URL). A webhook to a private, loopback or link-local host (by its "
    "address, or a name such as localhost) is refused unless ALERTS_ALLOW_PRIVATE_TARGETS=true; "
    "names are looked up, and judged again, at each send.",
    "example": "webhook:https://hooks.example.com/glowing-fiesta",
}
NUMBER = {"type": "number", "minimum": -MAX_ABS_VALUE, "maximum": MAX_ABS_VALUE}
RULE = {
    "operation": {"enum": list(OPERATIONS), "description": "Default: `sum` for counters, "
                  "`avg` for values."},
    "condition": {"enum": list(CONDITIONS)},
    "threshold": NUMBER,
    "percent": {"type": "number", "minimum": 0, "maximum": MAX_PERCENT,
                "description": "Fires on a change of more than this, in percent."},
    "direction": {"enum": list(DIRECTIONS), "description": "Default: `either`."},
    "compare": {"enum": list(COMPARES), "description": "The baseline is the same window this "
                "much earlier. Default: `1d`."},
}  # fmt: skip
KIND_RULES = {
    "value": (["condition", "threshold"], ["operation", "condition", "threshold"]),
    "delta": (["percent"], ["operation", "percent", "direction", "compare"]),
    "data": ([], []),
}
_TIME = {"type": ["string", "null"], "format": "date-time"}


def _common(filter_item, name):
    return {
        "metric": name,
        "window": {"enum": list(ALERT_WINDOWS), "description": "The closed window judged: "
                   "the minutes up to the last minute boundary."},
        "filters": {"type": "array", "items": filter_item, "description": "The query's "
                    "filter strings (AND-ed); an empty string is no filter."},
        "notify": {"type": "array", "minItems": 1, "maxItems": MAX_TARGETS, "items": TARGET},
        "repeat": {"type": "integer", "minimum": 0, "maximum": MAX_REPEAT_MINUTES,
                   "description": "Minutes between reminders while firing (0, the default: "
                   "none)."},
    }  # fmt: skip


def _create_body(filter_item, name):
    branches = []
    for kind, (required, own) in KIND_RULES.items():
        properties = {"kind": {"const": kind}, **_common(filter_item, name)}
        properties.update({field: RULE[field] for field in own})
        branches.append({
            "type": "object",
            "title": f"{kind} alert",
            "required": ["kind", "metric", "window", "notify", *required],
            "additionalProperties": False,
            "properties": properties,
        })  # fmt: skip
    return {
        "oneOf": branches,
        "description": "`value`: the operation over the window compared with `threshold`; "
        "`delta`: its change against the same window `compare` earlier; `data`: no point at all "
        "in the window. A value or delta alert's metric must exist (404 METRIC_NOT_FOUND); a "
        "data alert may wait for one. Unknown fields, and the fields of another kind, are "
        "refused.",
    }


def _change_body(filter_item, name):
    return {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": False,
        "description": "Some of a new alert's fields, not `kind`; a rule field of another kind "
        "is 409 ALERT_KIND_MISMATCH.",
        "properties": {**_common(filter_item, name), **RULE},
    }


ALERT = {
    "type": "object",
    "required": ["id", "metric", "kind", "window", "filters", "notify", "repeat", "state",
                 "value", "evaluated_at", "changed_at", "created_at"],
    "properties": {
        "id": {"type": "integer"},
        "metric": {"type": "string"},
        "kind": {"enum": list(KIND_RULES)},
        "window": {"enum": list(ALERT_WINDOWS)},
        "operation": {"enum": [*OPERATIONS, None]},
        "condition": {"enum": list(CONDITIONS)},
        "threshold": {"type": "number"},
        "percent": {"type": "number"},
        "direction": {"enum": list(DIRECTIONS)},
        "compare": {"enum": list(COMPARES)},
        "filters": {"type": "array", "items": {"type": "string"}},
        "notify": {"type": "array", "items": {"type": "string"}},
        "repeat": {"type": "integer"},
        "state": {"enum": list(STATES)},
        "value": {"type": ["number", "null"], "description": "The last evaluation's value (a "
                  "data alert's: its count of points)."},
        "baseline": {"type": ["number", "null"]},
        "evaluated_at": _TIME,
        "changed_at": {**_TIME, "description": "When its state last changed."},
        "created_at": {"type": "string", "format": "date-time"},
    },
}  # fmt: skip
SECRET = {"type": "string", "description": "The webhook signing secret, shown only here."}
EVENT = {
    "type": "object",
    "required": ["at", "type", "state"],
    "properties": {
        "at": {"type": "string", "format": "date-time"},
        "type": {"enum": ["transition", "notice"]},
        "state": {"enum": list(STATES)},
        "channel": {"enum": ["webhook", "email"]},
        "outcome": {"enum": ["sent", "failed", "retrying"]},
        "notice": {"type": "string", "description": "The notice's id."},
    },
}
ALERT_SCHEMAS = {
    "Alert": {
        **ALERT,
        "required": ["success", *ALERT["required"]],
        "properties": {"success": {"const": True}, **ALERT["properties"]},
    },
    "AlertCreated": {
        **ALERT,
        "required": ["success", *ALERT["required"], "secret"],
        "properties": {"success": {"const": True}, **ALERT["properties"], "secret": SECRET},
    },
    "AlertList": {
        "type": "object",
        "required": ["success", "data"],
        "properties": {"success": {"const": True}, "data": {"type": "array", "items": ALERT}},
    },
    "AlertEvents": {
        "type": "object",
        "required": ["success", "data"],
        "properties": {"success": {"const": True}, "data": {"type": "array", "items": EVENT}},
    },
    "AlertDeleted": {
        "type": "object",
        "required": ["success", "message", "id"],
        "properties": {
            "success": {"const": True},
            "message": {"type": "string"},
            "id": {"type": "integer"},
        },
    },
    "AlertSecret": {
        "type": "object",
        "required": ["success", "id", "secret"],
        "properties": {"success": {"const": True}, "id": {"type": "integer"}, "secret": SECRET},
    },
    "AlertTest": {
        "type": "object",
        "required": ["success", "id", "results"],
        "properties": {
            "success": {"const": True},
            "id": {"type": "string", "description": "The test notice's id."},
            "results": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["target", "channel", "outcome"],
                    "properties": {
                        "target": {"type": "string"},
                        "channel": {"enum": ["webhook", "email"]},
                        "outcome": {"enum": ["sent", "failed"]},
                        "error": {"type": "string"},
                    },
                },
            },
        },
    },
}


def alert_paths(filter_item, json_answer, errors, security, name, with_test=False):
    """{path: operations} of /api/alerts."""
    alert_id = {"in": "path", "name": "alert_id", "required": True, "schema": {"type": "integer"}}

    def body(schema):
        return {"required": True, "content": {"application/json": {"schema": schema}}}

    def operation(summary, answer, statuses, **more):
        return {"summary": summary, "security": security,
                "responses": {**answer, **errors(*statuses)}, **more}  # fmt: skip

    one = [alert_id]
    paths = {
        "/api/alerts": {
            "post": operation(
                "Create an alert in the caller's tenant (write)",
                {"201": json_answer("AlertCreated", "Created; `secret` is shown only here.")},
                (400, 401, 403, 404, 413, 429, 503),
                requestBody=body(_create_body(filter_item, name)),
            ),
            "get": operation(
                "The caller's tenant's alerts, each with its state",
                {"200": json_answer("AlertList", "Oldest first.")},
                (401, 403, 429, 503),
            ),
        },
        "/api/alerts/{alert_id}": {
            "get": operation(
                "One alert", {"200": json_answer("Alert", "The alert.")},
                (401, 403, 404, 429, 503), parameters=one,
            ),
            "patch": operation(
                "Change some of an alert's fields (write)",
                {"200": json_answer("Alert", "Changed.")},
                (400, 401, 403, 404, 409, 413, 429, 503),
                parameters=one, requestBody=body(_change_body(filter_item, name)),
            ),
            "delete": operation(
                "Delete an alert and its events (write)",
                {"200": json_answer("AlertDeleted", "Deleted.")},
                (401, 403, 404, 429, 503), parameters=one,
            ),
        },
        "/api/alerts/{alert_id}/events": {
            "get": operation(
                "An alert's transitions and notices' outcomes",
                {"200": json_answer("AlertEvents", "Oldest first, the latest 1000.")},
                (401, 403, 404, 429, 503), parameters=one,
            )
        },
        "/api/alerts/{alert_id}/secret": {
            "post": operation(
                "Replace an alert's webhook signing secret (write)",
                {"200": json_answer("AlertSecret", "The new secret, shown only here.")},
                (401, 403, 404, 429, 503), parameters=one,
            )
        },
    }  # fmt: skip
    if with_test:
        paths["/api/alerts/{alert_id}/test"] = {
            "post": operation(
                "Send a test notice to every target of an alert (write)",
                {"200": json_answer("AlertTest", "What each target did with it.")},
                (401, 403, 404, 429, 503),
                parameters=one,
            )
        }
    return paths
