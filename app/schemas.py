"""marshmallow schemas for every request body and query string, and the point validator."""

import math
import re

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
    validates,
)

from app.errors import ApiError
from app.timeutil import parse_decimal, parse_timestamp

NAME_PATTERN = r"^[A-Za-z0-9._-]{1,255}\Z"
MAX_ABS_VALUE = 1e16
METRIC_TYPES = ("counter", "value")


class JsonNumber(fields.Field):
    """A JSON number (never a string, boolean or null), finite, |v| ≤ 1e16 → float."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError("Must be a number.")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValidationError("Must be a finite number.")
        if abs(value) > MAX_ABS_VALUE:
            raise ValidationError("Must be between -1e16 and 1e16.")
        return float(value)


class Timestamp(fields.Field):
    """ISO 8601 text or Unix seconds → naive UTC datetime."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return parse_timestamp(value)
        except ValueError as exc:
            raise ValidationError(f"Must be an ISO 8601 time or Unix seconds: {exc}.") from None


def MetricName(**kwargs):  # noqa: N802 - a field factory reads like a field class
    """A metric name: ``^[A-Za-z0-9._-]{1,255}$``, case-sensitive."""
    return fields.String(
        validate=validate.Regexp(
            NAME_PATTERN, error="Must be 1-255 characters of A-Z, a-z, 0-9, '.', '_' or '-'."
        ),
        **kwargs,
    )


class _PointSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    name = MetricName(required=True)
    recorded_at = Timestamp(load_default=None)

    @pre_load
    def _metric_alias(self, data, **kwargs):
        if isinstance(data, dict) and "name" not in data and "metric" in data:
            data = {**data, "name": data["metric"]}
        return data


class CounterSchema(_PointSchema):
    """POST /api/metrics/counter: value defaults to 1."""

    value = JsonNumber(load_default=1.0)


class ValueSchema(_PointSchema):
    """POST /api/metrics/value: value is required."""

    value = JsonNumber(required=True)


class BatchItemSchema(_PointSchema):
    """One item of POST /api/metrics/batch; a counter without value counts 1."""

    type = fields.String(required=True, validate=validate.OneOf(METRIC_TYPES))
    value = JsonNumber()  # absent: 1 for a counter, an error for a value; null is refused


class BatchSchema(Schema):
    """POST /api/metrics/batch: the list itself; items are validated one by one."""

    class Meta:
        unknown = EXCLUDE

    metrics = fields.List(fields.Raw(allow_none=True), required=True)


def coerce_form_number(data, key="value"):
    """Form bodies carry text: a decimal string becomes a number, anything else stays text."""
    raw = data.get(key)
    if isinstance(raw, str) and not raw.strip():
        del data[key]  # "value=" in a form means no value
    elif isinstance(raw, str) and parse_decimal(raw) is not None:
        data[key] = parse_decimal(raw)
    return data


WINDOWS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400}
WINDOW_ALIASES = {"minute": "1m", "hour": "1h", "day": "1d"}
FILLS = ("zero", "none")
# README-form query parameters and the names they stand for.
QUERY_ALIASES = {
    "metric": "name",
    "aggregation": "operation",
    "interval": "window",
    "from": "start",
    "to": "end",
}
_CASE_FREE = ("operation", "window", "fill")


class AggregateQuerySchema(Schema):
    """GET /api/metrics/aggregate and /api/metrics/<name>: names, operation, window, range."""

    class Meta:
        unknown = EXCLUDE

    name = fields.String(required=True)
    operation = fields.String(
        load_default=None, validate=validate.OneOf(("sum", "count", "avg", "min", "max"))
    )
    window = fields.String(load_default="1h")
    start = Timestamp(load_default=None)
    end = Timestamp(load_default=None)
    fill = fields.String(load_default="zero", validate=validate.OneOf(FILLS))

    @pre_load
    def _aliases(self, data, **kwargs):
        data = {key: value for key, value in data.items() if value != ""}  # empty = default
        for alias, canonical in QUERY_ALIASES.items():
            if alias in data and canonical not in data:
                data[canonical] = data[alias]
        for key in _CASE_FREE:
            if isinstance(data.get(key), str):
                data[key] = data[key].lower()
        return data

    @validates("window")
    def _known_window(self, value, **kwargs):
        if WINDOW_ALIASES.get(value, value) not in WINDOWS:
            choices = ", ".join([*WINDOWS, *WINDOW_ALIASES])
            raise ValidationError(f"Must be one of: {choices}.")

    @validates("name")
    def _valid_names(self, value, **kwargs):
        names = value.split(",")
        bad = [n for n in names if not re.match(NAME_PATTERN, n)]
        if bad:
            raise ValidationError(f"Not a valid metric name: {', '.join(map(repr, bad))}.")

    @post_load
    def _normalise(self, data, **kwargs):
        data["names"] = list(dict.fromkeys(data.pop("name").split(",")))
        data["window"] = WINDOW_ALIASES.get(data["window"], data["window"])
        return data


class ListQuerySchema(Schema):
    """GET /api/metrics: prefix, limit (1–1000) and offset."""

    class Meta:
        unknown = EXCLUDE

    prefix = fields.String(load_default="", validate=validate.Length(max=255))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=2**62))

    @pre_load
    def _empty_means_default(self, data, **kwargs):
        return {key: value for key, value in data.items() if value != ""}


def not_an_object(field):
    """The VALIDATION_ERROR for a body or item that is not a JSON object."""
    return ApiError(
        "VALIDATION_ERROR",
        f"{field} must be a JSON object",
        details={field: ["Must be a JSON object."]},
    )


def validation_error(exc, what="Invalid request"):
    """A marshmallow ValidationError → VALIDATION_ERROR whose details name each field."""
    messages = exc.messages if isinstance(exc.messages, dict) else {"body": exc.messages}
    summary = "; ".join(f"{field}: {' '.join(map(str, msgs))}" for field, msgs in messages.items())
    return ApiError("VALIDATION_ERROR", f"{what}: {summary}", details=messages)


def load_or_raise(schema, data, what="Invalid request"):
    """``schema.load(data)``, or the VALIDATION_ERROR a client sees."""
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise validation_error(exc, what) from None
