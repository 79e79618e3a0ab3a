"""marshmallow schemas for every request body and query string, and the point validator."""

import math
import re

from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate

from app.timeutil import parse_timestamp

NAME_PATTERN = r"^[A-Za-z0-9._-]{1,255}\Z"
MAX_ABS_VALUE = 1e16
METRIC_TYPES = ("counter", "value")
_DECIMAL_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


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
    value = JsonNumber(load_default=None)


class BatchSchema(Schema):
    """POST /api/metrics/batch: the list itself; items are validated one by one."""

    class Meta:
        unknown = EXCLUDE

    metrics = fields.List(fields.Raw(), required=True)


def coerce_form_number(data, key="value"):
    """Form bodies carry text: a decimal string becomes a number, anything else stays text."""
    raw = data.get(key)
    if isinstance(raw, str) and _DECIMAL_RE.match(raw.strip()):
        text = raw.strip()
        data[key] = float(text) if any(c in text for c in ".eE") else int(text)
    return data
