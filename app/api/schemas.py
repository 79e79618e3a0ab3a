"""marshmallow schemas for every request body and query string: the one home of the rules.

Ingest: ``PointSchema`` validates a point for every route (the route fixes the type of
/counter and /value; a batch item names its own) and ``load_point`` adds the accepted time
window; ``fast_point`` takes the common valid item without marshmallow's per-field machinery,
from the same constants and parsers, and leaves anything unusual to the schema. Queries:
``AggregateQuerySchema`` and ``ListQuerySchema``. A ``ValidationError`` becomes the client's
400 in one place (``app.errors``); a ``CodedValidationError`` carries a code of its own.
"""

import difflib
import functools
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
    validates,
    validates_schema,
)

from app.api.errors import ApiError
from app.core.buckets import bucket_range
from app.core.constants import (
    COUNTER_DEFAULT_VALUE,
    FILLS,
    MAX_ABS_VALUE,
    METRIC_TYPES,
    NAME_PATTERN,
    NAME_RULE,
    OPERATIONS,
    WINDOW_ALIASES,
    WINDOWS,
)
from app.core.tags import (
    DEFAULT_MAX_TAGS,
    FILTER_PATTERN,
    GROUP_BY_PATTERN,
    TagError,
    parse_filters,
    parse_group_by,
    parse_tags_text,
    point_identity,
)
from app.core.tenants import DEFAULT_TENANT_ID
from app.core.timeutil import (
    EARLIEST,
    LATEST,
    LATEST_EPOCH_MILLISECONDS,
    isoformat_z,
    parse_decimal,
    parse_timestamp,
    representable,
    utcnow,
)
from app.core.writes import Point
from app.core.zones import (
    COMPARE_DAYS,
    ZONE_NAMES,
    Bucketing,
    UnknownZone,
    compare_range,
    listed_zone,
)

_NAME_RE = re.compile(NAME_PATTERN)
MISSING = "Missing data for required field."


class CodedValidationError(ValidationError):
    """A ValidationError with its own code and summary (the message a client reads); the
    details name ``field``."""

    def __init__(self, code, summary, field, detail=None):
        super().__init__({field: [detail or summary]})
        self.code = code
        self.summary = summary


_JSON_KINDS = {str: "a string", bool: "a boolean", list: "a list", dict: "an object"}


def _number_problem(value):
    """Why ``value`` is not an acceptable point value, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = _JSON_KINDS.get(type(value), type(value).__name__)
        shown = f" ({json.dumps(value)[:40]})" if isinstance(value, str | bool) else ""
        hint = "; in a JSON body write it without quotes" if isinstance(value, str) else ""
        return f"Must be a number, not {kind}{shown}{hint}."
    if isinstance(value, float) and not math.isfinite(value):
        return "Must be a finite number."
    if abs(value) > MAX_ABS_VALUE:
        return "Must be between -1e16 and 1e16."
    return None


class JsonNumber(fields.Field):
    """A JSON number (never a string, boolean or null), finite, |v| ≤ 1e16 → float."""

    def _deserialize(self, value, attr, data, **kwargs):
        problem = _number_problem(value)
        if problem:
            raise ValidationError(problem)
        return float(value)


class Timestamp(fields.Field):
    """ISO 8601 text, Unix seconds, or Unix milliseconds (epoch numbers of magnitude ≥ 1e11,
    what JavaScript's Date.now() and Grafana send) → naive UTC datetime."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return parse_timestamp(value)
        except ValueError as exc:
            raise ValidationError(
                f"Must be an ISO 8601 time, Unix seconds or Unix milliseconds: {exc}."
            ) from None


def MetricName(**kwargs):  # noqa: N802 - a field factory reads like a field class
    """A metric name: ``^[A-Za-z0-9._-]{1,255}$``, case-sensitive."""
    return fields.String(validate=validate.Regexp(NAME_PATTERN, error=NAME_RULE), **kwargs)


def _name_alias(data):
    """``metric`` is an alias of ``name`` (``name`` wins when both are sent)."""
    if isinstance(data, dict) and "name" not in data and "metric" in data:
        return {**data, "name": data["metric"]}
    return data


class PointSchema(Schema):
    """One point: name, value (a counter's defaults to 1), recorded_at (default: now).

    ``metric_type`` fixes the type (POST /counter, /value); without it the item names its own
    ``type`` (a batch item). Loads to ``{"name", "type", "value", "recorded_at"}``.
    """

    class Meta:
        unknown = EXCLUDE

    name = MetricName(
        required=True,
        metadata={"description": "The metric (alias: `metric`).", "example": "page.views"},
    )
    type = fields.String(
        validate=validate.OneOf(METRIC_TYPES),
        metadata={"description": "Fixed by the metric's first write; the other type is a 409."},
    )
    value = JsonNumber(  # absent: 1 for a counter, an error for a value; null is refused
        allow_none=False,
        error_messages={"null": "Must be a number, not null."},
        metadata={"description": "A JSON number, |v| ≤ 1e16; a counter's defaults to 1."},
    )
    tags = fields.Raw(  # checked by app/core/tags.py, whose messages name the tag
        load_default=None,
        metadata={
            "type": "object",
            "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 255},
            "description": "The point's dimensions: string keys (^[A-Za-z_][A-Za-z0-9_.-]{0,63}$) "
            "to string values (1-255 characters without control characters, ',' or '\\'), at "
            "most METRICS_MAX_TAGS; form bodies send `tags=k:v,k:v`.",
            "example": {"host": "web-3", "status": "500"},
        },
    )
    recorded_at = Timestamp(
        load_default=None,
        metadata={
            "description": "ISO 8601 (offsets honoured, naive is UTC), Unix seconds, or Unix "
            "milliseconds (magnitude ≥ 1e11); null or absent: now. Must lie within the last "
            "METRICS_MAX_PAST_DAYS days and at most METRICS_MAX_FUTURE_SECONDS ahead of now "
            "(GET /api/limits; else TIMESTAMP_OUT_OF_RANGE).",
        },
    )

    def __init__(self, metric_type=None, **kwargs):
        super().__init__(**kwargs)
        self.metric_type = metric_type

    @pre_load
    def _route_fields(self, data, **kwargs):
        data = _name_alias(data)
        if self.metric_type and isinstance(data, dict):
            data = {**data, "type": self.metric_type}  # the route decides; a body's is ignored
        return data

    @validates_schema(skip_on_field_errors=False, pass_original=True)
    def _type_and_value(self, data, original, **kwargs):
        if "type" not in data and not self.metric_type:
            raise ValidationError(MISSING, "type")
        sent = isinstance(original, dict) and "value" in original
        if data.get("type") == "value" and "value" not in data and not sent:
            raise ValidationError(MISSING, "value")

    @post_load
    def _defaults(self, data, **kwargs):
        data.setdefault("value", COUNTER_DEFAULT_VALUE)
        return data


class BatchSchema(Schema):
    """POST /api/metrics/batch: the list itself; items are validated one by one."""

    class Meta:
        unknown = EXCLUDE

    metrics = fields.List(fields.Raw(allow_none=True), required=True)


@dataclass(frozen=True)
class TimeWindow:
    """A write's moment (the default recorded_at), the times it accepts and how a refusal
    explains them; with the most tags a point may carry and the tenant its points go to."""

    now: datetime
    earliest: datetime
    latest: datetime
    rule: str
    max_tags: int = DEFAULT_MAX_TAGS  # METRICS_MAX_TAGS: tags one point may carry
    tenant_id: int = DEFAULT_TENANT_ID


def accepted_window(
    now, max_past_days, max_future_seconds, max_tags=DEFAULT_MAX_TAGS, tenant_id=DEFAULT_TENANT_ID
):
    """The TimeWindow of a write at ``now`` (the most tags a point may carry, its tenant)."""
    return TimeWindow(
        now,
        now - timedelta(days=max_past_days),
        now + timedelta(seconds=max_future_seconds),
        f"recorded_at must be within the last {max_past_days} days "
        f"and at most {max_future_seconds} seconds ahead",
        max_tags,
        tenant_id,
    )


def _in_window(recorded_at, window):
    if not window.earliest <= recorded_at <= window.latest:
        raise CodedValidationError("TIMESTAMP_OUT_OF_RANGE", window.rule, "recorded_at")
    return recorded_at


def load_point(schema, item, window, fast=True):
    """Validate one point (a dict) for ``schema``'s route: a Point, or a ValidationError.
    ``fast=False`` skips ``fast_point`` (the property test compares the two)."""
    if not isinstance(item, dict):
        raise not_an_object("item")
    point = fast_point(item, schema.metric_type, window) if fast else None
    if point is not None:
        return point
    loaded = schema.load(item)
    recorded_at = _in_window(loaded["recorded_at"] or window.now, window)
    tags, tags_hash = _identity(item.get("tags"), window)
    return Point(
        loaded["name"], loaded["type"], loaded["value"], recorded_at, tags, tags_hash,
        window.tenant_id,
    )  # fmt: skip


def _identity(raw, window):
    """A point's tags as (canonical text, hash); a bad tag is a ValidationError naming it."""
    try:
        return point_identity(raw, window.max_tags)
    except TagError as exc:
        raise ValidationError({exc.field: [exc.reason]}) from None


def fast_point(item, metric_type, window):
    """The common valid point without marshmallow (same constants, same parsers), or None
    when anything about it is unusual — the schema then gives the exact error."""
    name = item["name"] if "name" in item else item.get("metric")
    kind = metric_type or item.get("type")
    if type(name) is not str or not _NAME_RE.match(name) or kind not in METRIC_TYPES:
        return None
    value = item.get("value")
    if value is None:
        if "value" in item or kind == "value":
            return None
        value = COUNTER_DEFAULT_VALUE
    elif _number_problem(value) is not None:
        return None
    recorded = item.get("recorded_at")
    if recorded is None:
        recorded_at = window.now
    else:
        try:
            recorded_at = parse_timestamp(recorded)
        except ValueError:
            return None
    if not window.earliest <= recorded_at <= window.latest:
        return None
    tags, tags_hash = _identity(item.get("tags"), window)
    return Point(name, kind, float(value), recorded_at, tags, tags_hash, window.tenant_id)


def coerce_form_number(data, key="value"):
    """Form bodies carry text: a decimal string becomes a number, anything else stays text."""
    raw = data.get(key)
    if isinstance(raw, str) and not raw.strip():
        del data[key]  # "value=" in a form means no value
    elif isinstance(raw, str) and parse_decimal(raw) is not None:
        data[key] = parse_decimal(raw)
    return data


def coerce_form_tags(data, key="tags"):
    """A form body's ``tags=k:v,k:v`` as the object a JSON body would carry (its limit and
    rules are checked with the point's, by app/core/tags.py)."""
    raw = data.get(key)
    if isinstance(raw, str):
        try:
            data[key] = parse_tags_text(raw, max_tags=len(raw) + 1)
        except TagError as exc:
            raise ValidationError({exc.field: [exc.reason]}) from None
    return data


def not_an_object(field):
    """The ValidationError for a body or item that is not a JSON object."""
    return CodedValidationError(
        "VALIDATION_ERROR", f"{field} must be a JSON object", field, "Must be a JSON object."
    )


# README-form query parameters and the names they stand for.
QUERY_ALIASES = {
    "metric": "name",
    "aggregation": "operation",
    "interval": "window",
    "from": "start",
    "to": "end",
}
_CASE_FREE = ("operation", "window", "fill", "source", "format")
FORMATS = ("json", "csv")
# auto: rollups where they answer exactly; raw: raw points only (for comparison).
SOURCES = ("auto", "raw")
DEFAULT_SPAN = timedelta(hours=24)


def _query_params(data):
    """Empty parameters mean their default; aliases fill in their canonical names."""
    data = {key: value for key, value in data.items() if value != ""}
    for alias, canonical in QUERY_ALIASES.items():
        if alias in data and canonical not in data:
            data[canonical] = data[alias]
    return data


def _unknown_parameter(name, known):
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f"Unknown parameter; did you mean {close[0]!r}?" if close else "Unknown parameter."


class _QuerySchema(Schema):
    """Query strings: an unknown parameter is a 400 naming it (and the closest known one);
    parameters starting with ``_`` (cache busters) are ignored; errors name a parameter as it
    was sent."""

    class Meta:
        unknown = EXCLUDE

    def known_parameters(self):
        """The parameter names this query takes, aliases included."""
        aliases = {alias for alias, canonical in QUERY_ALIASES.items() if canonical in self.fields}
        return set(self.fields) | aliases

    @pre_load
    def _prepare(self, data, **kwargs):
        known = self.known_parameters()
        unknown = sorted(key for key in data if key not in known and not key.startswith("_"))
        if unknown:
            raise ValidationError({key: [_unknown_parameter(key, known)] for key in unknown})
        return self.normalise({k: v for k, v in data.items() if not k.startswith("_")})

    def normalise(self, data):
        """The parameters as the fields read them (a subclass's own rules)."""
        return data

    def handle_error(self, error, data, **kwargs):
        """Re-key the details by the spelling the client used (``from``, ``interval``…)."""
        spelled = {
            canonical: alias
            for alias, canonical in QUERY_ALIASES.items()
            if alias in data and canonical not in data
        }
        if isinstance(error.messages, dict) and spelled:
            messages = {spelled.get(field, field): text for field, text in error.messages.items()}
            raise ValidationError(messages) from None


class AggregateQuerySchema(_QuerySchema):
    """GET /api/metrics/aggregate and /api/metrics/<name>: names, operation, window, range.

    Loads to {names, operation (None: each type's default), window ("1h"…), window_seconds,
    start, end, first and last bucket, fill}; ``end`` defaults to now and ``start`` to a day
    before ``end``; more than ``max_buckets`` buckets is QUERY_TOO_LARGE.
    """

    name = fields.List(
        fields.String(metadata={"pattern": NAME_PATTERN}),
        required=True,
        metadata={
            "description": "One or more metric names: `name=a,b` or `name=a&name=b` (a name "
            "given twice counts once; at most METRICS_MAX_QUERY_NAMES different names).",
            "minItems": 1,
        },
    )
    operation = fields.String(
        load_default=None,
        validate=validate.OneOf(OPERATIONS),
        metadata={
            "description": "Default: `sum` for counters, `avg` for values. Any case. "
            "`p50`, `p90`, `p95`, `p99`: percentiles of value metrics (nearest rank; from the "
            "rollups' sketches within 1 %, exact with `source=raw`; a counter's → "
            "VALIDATION_ERROR; an empty bucket's is null)."
        },
    )
    window = fields.String(
        load_default="1h",
        metadata={"enum": [*WINDOWS, *WINDOW_ALIASES], "description": "Bucket width. Any case."},
    )
    start = Timestamp(
        load_default=None,
        metadata={
            "description": "ISO 8601, Unix seconds, or Unix milliseconds (magnitude ≥ 1e11); "
            "default: end − 24 h. Must be before end, and both between 1970-01-01 and "
            "9999-01-01 UTC; the range may span at most METRICS_MAX_BUCKETS buckets, and names "
            "× buckets at most METRICS_MAX_QUERY_POINTS (else QUERY_TOO_LARGE).",
            "minimum": 0,
            "maximum": LATEST_EPOCH_MILLISECONDS,
        },
    )
    end = Timestamp(
        load_default=None,
        metadata={
            "description": "Exclusive; same forms and rules as start; default now.",
            "minimum": 0,
            "maximum": LATEST_EPOCH_MILLISECONDS,
        },
    )
    fill = fields.String(
        load_default="zero",
        validate=validate.OneOf(FILLS),
        metadata={"description": "`none` leaves empty buckets out. Any case."},
    )
    source = fields.String(
        load_default="auto",
        validate=validate.OneOf(SOURCES),
        metadata={"description": "`raw` reads raw points only (for comparison). Any case."},
    )
    format = fields.String(
        load_default="json",
        validate=validate.OneOf(FORMATS),
        metadata={"description": "`csv` answers text/csv with an X-Resolution header. Any case."},
    )
    filter = fields.List(
        fields.String(metadata={"pattern": FILTER_PATTERN}),
        load_default=(),
        metadata={
            "description": "Keep the series whose tags pass (repeatable, AND-ed): `key=value`, "
            "`key!=value`, `key=~regex`, `key!~regex` (RE2, full match, at most 256 "
            'characters); a series without the key has the value "".'
        },
    )
    group_by = fields.String(
        load_default=None,
        metadata={
            "pattern": GROUP_BY_PATTERN,
            "description": "`k1,k2` (at most 3 tag keys; one given twice counts once): one "
            'result per combination, in `series` (a series without a key groups under "").',
        },
    )
    tz = fields.String(
        load_default=None,
        metadata={
            "enum": list(ZONE_NAMES),
            "description": "An IANA time zone (the names of the pinned tzdata): `1d` buckets "
            "start at local midnight (a DST day is 23 or 25 hours), `1h` at local hours (zones "
            "offset by 30 or 45 minutes shift them); shorter windows keep their instants. "
            "Timestamps carry the local offset. Default: UTC, timestamps ending in `Z`.",
        },
    )
    compare = fields.String(
        load_default=None,
        validate=validate.OneOf(COMPARE_DAYS),
        metadata={
            "description": "Add the same buckets shifted back by 1, 7 or 28 days (calendar days "
            "in `tz`, else multiples of 24 h), as `compare: {offset, data}` beside each `data`, "
            "labelled with the earlier times. Counts twice against the bucket and point limits."
        },
    )
    top = fields.Integer(
        load_default=None,
        validate=validate.Range(min=1, max=100),
        metadata={
            "description": "With group_by: the N groups with the largest operation over the "
            "range (smallest for min), plus one `other` group of the rest (ignored without "
            "group_by)."
        },
    )

    def __init__(self, limits, **kwargs):
        super().__init__(**kwargs)
        self.limits = limits

    def normalise(self, data):
        """Aliases, ``name=a,b`` as a list (a JSON body's list as it is), and case-free
        choices."""
        data = _query_params(data)
        if isinstance(data.get("name"), str):  # ?name=a,b (and ?name=a&name=b, joined)
            data["name"] = data["name"].split(",")
        for key in _CASE_FREE:
            if isinstance(data.get(key), str):
                data[key] = data[key].lower()
        return data

    @validates("window")
    def _known_window(self, value, **kwargs):
        if WINDOW_ALIASES.get(value, value) not in WINDOWS:
            choices = ", ".join([*WINDOWS, *WINDOW_ALIASES])
            raise ValidationError(f"Must be one of: {choices}.")

    @validates("tz")
    def _known_zone(self, value, **kwargs):
        if value is None:  # not sent: UTC
            return
        try:
            listed_zone(value)
        except UnknownZone as exc:
            raise ValidationError(f"{str(exc)[0].upper()}{str(exc)[1:]}.") from None

    @validates("name")
    def _valid_names(self, value, **kwargs):
        bad = [name for name in value if not _NAME_RE.match(name)]
        if bad:
            raise ValidationError(f"Not a valid metric name: {', '.join(map(repr, bad))}.")

    @post_load
    def _resolve(self, data, **kwargs):
        data["names"] = list(dict.fromkeys(data.pop("name")))
        data["window"] = WINDOW_ALIASES.get(data["window"], data["window"])
        data["window_seconds"] = WINDOWS[data["window"]]
        data["end"] = data["end"] or utcnow()
        _representable(data["end"], "end")
        data["start"] = data["start"] or max(EARLIEST, data["end"] - DEFAULT_SPAN)
        _representable(data["start"], "start")
        if data["start"] >= data["end"]:
            raise ValidationError("start must be before end", "start")
        data["first"], data["last"] = bucket_range(
            data["start"], data["end"], data["window_seconds"]
        )
        _dimensions(data)
        _zone_and_compare(data)
        groups = 1 if data["top"] is None else data["top"] + 1  # the rest in one group
        self.limits.check(len(data["names"]), groups, data["buckets"])
        return data


def _zone_and_compare(data):
    """``bucketing`` (the window in ``tz``, a ZoneInfo or None), ``compare_range`` (the earlier
    range, or None) and ``buckets``: how many the answer holds, the compared ones included."""
    tz = None if data["tz"] is None else listed_zone(data["tz"])
    bucketing = data["bucketing"] = Bucketing(data["window_seconds"], tz)
    data["buckets"] = bucketing.count(data["start"], data["end"])
    data["compare_range"] = None
    if data["compare"] is not None:
        earlier = compare_range(data["start"], data["end"], data["compare"], tz)
        if not all(representable(moment) for moment in earlier):
            raise ValidationError(
                f"The compared range must lie after {isoformat_z(EARLIEST)}.", "compare"
            )
        data["compare_range"] = earlier
        data["buckets"] += bucketing.count(*earlier)


def _dimensions(data):
    """Filters and group_by parsed by the rules of app/core/tags.py (a bad one names itself);
    ``top`` counts only with group_by."""
    try:
        data["filters"] = parse_filters(list(data.pop("filter")), "filter")
        data["group_by"] = parse_group_by(data["group_by"], "group_by")
    except TagError as exc:
        raise ValidationError({exc.field: [exc.reason]}) from None
    if not data["group_by"]:
        data["top"] = None  # top keeps groups: without group_by there is one, kept whole


def _representable(moment, field):
    if not representable(moment):
        raise ValidationError(
            f"Must lie between {isoformat_z(EARLIEST)} and {isoformat_z(LATEST)}.", field
        )


@dataclass(frozen=True)
class QueryLimits:
    """What one read may cost (METRICS_MAX_BUCKETS, METRICS_MAX_QUERY_NAMES,
    METRICS_MAX_QUERY_POINTS), checked before any work."""

    max_buckets: int
    max_names: int
    max_points: int

    @classmethod
    def from_config(cls, config):
        """The limits a deployment's settings set."""
        return cls(config["METRICS_MAX_BUCKETS"], config["METRICS_MAX_QUERY_NAMES"],
                   config["METRICS_MAX_QUERY_POINTS"])  # fmt: skip

    def check(self, names, groups, buckets):
        """QUERY_TOO_LARGE unless names, buckets and names × groups × buckets fit (``groups``:
        the most any name has)."""
        if names > self.max_names:
            _too_large(f"The query names {names} metrics", self.max_names, "name")
        if buckets > self.max_buckets:
            _too_large(f"The query spans {buckets} buckets", self.max_buckets, "buckets")
        points = names * groups * buckets
        if points > self.max_points:
            _too_large(
                f"The query would return {points} values (names × groups × buckets)",
                self.max_points,
                "points",
            )


def _too_large(what, limit, field):
    # Not a ValidationError: marshmallow would recode it.
    raise ApiError(
        "QUERY_TOO_LARGE",
        f"{what}; at most {limit} are allowed",
        details={field: [f"At most {limit}."]},
    )


@functools.cache
def aggregate_query_schema(limits):
    """The AggregateQuerySchema for some QueryLimits, built once (schemas are thread-safe)."""
    return AggregateQuerySchema(limits)


class ListQuerySchema(_QuerySchema):
    """GET /api/metrics: prefix, limit (1–1000), offset and after."""

    prefix = fields.String(
        load_default="",
        validate=validate.Length(max=255),
        metadata={
            "description": "Only names starting with this text, matched literally: any text "
            "up to 255 characters (one no name can start with gives an empty page)."
        },
    )
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=2**62))
    after = MetricName(
        load_default=None,
        metadata={
            "description": "Keyset paging: only names after this one (an answer with "
            "`has_more` gives `next_after`); cheaper than a large `offset`."
        },
    )

    def normalise(self, data):
        """An empty parameter means its default."""
        return {key: value for key, value in data.items() if value != ""}


class TagValuesQuerySchema(_QuerySchema):
    """GET /api/metrics/<name>/tags/<key>: prefix, limit (1–1000, default 100) and offset."""

    prefix = fields.String(
        load_default="",
        validate=validate.Length(max=255),
        metadata={"description": "Only values starting with this text (byte order)."},
    )
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=2**62))

    def normalise(self, data):
        """An empty parameter means its default."""
        return {key: value for key, value in data.items() if value != ""}


class QueryBodySchema(Schema):
    """POST /api/query: the GET routes' query as a JSON body (for long filter lists and
    dashboards). Unknown fields are refused, naming them."""

    class Meta:
        unknown = RAISE

    metrics = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    operation = fields.String()
    window = fields.String()
    start = fields.Raw()
    end = fields.Raw()
    filters = fields.List(fields.String())
    group_by = fields.Raw()
    top = fields.Integer(strict=True)
    fill = fields.String()
    source = fields.String()
    format = fields.String()
    tz = fields.String()
    compare = fields.String()

    @pre_load
    def _known_fields(self, data, **kwargs):
        data = closed_body(data, self.fields, whole=("top",))
        empty = sorted(key for key, value in data.items() if value == "" and key != "group_by")
        if empty:
            # A query string's empty parameter means its default; a body leaves the field out.
            raise ValidationError({key: ["Must not be empty; leave it out for the default."]
                                   for key in empty})  # fmt: skip
        return data


def unknown_field(name, known):
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f"Unknown field; did you mean {close[0]!r}?" if close else "Unknown field."


def closed_body(data, known, whole=()):
    """A JSON body checked before its schema loads it: an object, naming only ``known``
    fields (an unknown one is refused, with the closest known name); the ``whole`` fields'
    integral floats made ints (JSON has one number type: 5.0 is the integer 5)."""
    if not isinstance(data, dict):
        raise not_an_object("body")
    unknown = sorted(key for key in data if key not in known)
    if unknown:
        raise ValidationError({key: [unknown_field(key, known)] for key in unknown})
    integral = {name: int(data[name]) for name in whole
                if isinstance(data.get(name), float) and data[name].is_integer()}  # fmt: skip
    return {**data, **integral} if integral else data


# POST /api/query's fields → the GET query's parameters (and back, to name a bad one).
BODY_PARAMETERS = {"metrics": "name", "filters": "filter"}
PARAMETER_FIELDS = {parameter: field for field, parameter in BODY_PARAMETERS.items()}


def query_args(body):
    """A POST /api/query body (QueryBodySchema-loaded) as the GET routes' parameters."""
    args = {BODY_PARAMETERS.get(key, key): value for key, value in body.items()}
    if isinstance(args.get("group_by"), list):
        args["group_by"] = ",".join(map(str, args["group_by"]))
    return args
