"""The bodies of /api/alerts: a new alert (its kind decides which rule fields it takes) and a
change of some of its fields. Unknown fields are refused, naming them, as are the fields of
another kind; the targets are checked here (a webhook to a private or loopback host only with
ALERTS_ALLOW_PRIVATE_TARGETS)."""

from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates_schema

from app.api.schemas import JsonNumber, MetricName, closed_body
from app.core.alerts import (
    ALERT_WINDOWS,
    COMPARES,
    CONDITIONS,
    DIRECTIONS,
    KIND_DEFAULTS,
    KIND_FIELDS,
    KIND_REQUIRED,
    KINDS,
    MAX_PERCENT,
    MAX_REPEAT_MINUTES,
    MAX_TARGETS,
    RULE_FIELDS,
    target_problem,
)
from app.core.constants import OPERATIONS
from app.core.tags import TagError, parse_filters


def _one_of(choices):
    return validate.OneOf(choices, error=f"Must be one of: {', '.join(choices)}.")


class _AlertBody(Schema):
    metric = MetricName()
    window = fields.String(validate=_one_of(list(ALERT_WINDOWS)))
    operation = fields.String(validate=_one_of(OPERATIONS))
    filters = fields.List(fields.String())
    notify = fields.List(
        fields.String(),
        validate=validate.Length(min=1, max=MAX_TARGETS, error=f"Give 1-{MAX_TARGETS} targets."),
    )
    repeat = fields.Integer(
        strict=True,
        validate=validate.Range(
            min=0, max=MAX_REPEAT_MINUTES, error=f"Must be whole minutes from 0 to "
            f"{MAX_REPEAT_MINUTES}."
        ),
    )  # fmt: skip
    condition = fields.String(validate=_one_of(CONDITIONS))
    threshold = JsonNumber()
    percent = JsonNumber(
        validate=validate.Range(min=0, max=MAX_PERCENT, error="Must be from 0 to 1000000.")
    )
    direction = fields.String(validate=_one_of(DIRECTIONS))
    compare = fields.String(validate=_one_of(list(COMPARES)))

    def __init__(self, allow_private=False, **kwargs):
        super().__init__(**kwargs)
        self.allow_private = allow_private

    @pre_load
    def _known_fields(self, data, **kwargs):
        return closed_body(data, self.fields, whole=("repeat",))

    @validates_schema
    def _targets_and_filters(self, data, **kwargs):
        problems = {}
        for position, text in enumerate(data.get("notify") or ()):
            problem = target_problem(text, self.allow_private)
            if problem:
                problems.setdefault("notify", []).append(f"Target {position}: {problem}")
        try:
            parse_filters(data.get("filters"), "filters")
        except TagError as error:
            problems["filters"] = [str(error.reason)]
        if problems:
            raise ValidationError(problems)


class AlertCreateSchema(_AlertBody):
    """POST /api/alerts: ``metric``, ``kind``, ``window`` and ``notify`` (required), ``filters``
    and ``repeat`` (default none, 0), and the kind's own: ``value`` — ``condition`` and
    ``threshold`` (required), ``operation``; ``delta`` — ``percent`` (required), ``direction``
    (default either), ``compare`` (default 1d), ``operation``; ``data`` — nothing more."""

    kind = fields.String(required=True, validate=_one_of(KINDS))
    metric = MetricName(required=True)
    window = fields.String(required=True, validate=_one_of(list(ALERT_WINDOWS)))
    notify = fields.List(
        fields.String(),
        required=True,
        validate=validate.Length(min=1, max=MAX_TARGETS, error=f"Give 1-{MAX_TARGETS} targets."),
    )

    @validates_schema
    def _kind_fields(self, data, **kwargs):
        kind = data.get("kind")
        if kind not in KIND_FIELDS:
            return
        problems = {
            name: [f"Not a field of a {kind} alert."]
            for name in RULE_FIELDS
            if name in data and name not in KIND_FIELDS[kind]
        }
        for name in KIND_REQUIRED[kind]:
            if name not in data:
                problems[name] = [f"Missing data for required field (a {kind} alert)."]
        if problems:
            raise ValidationError(problems)

    def load(self, data, **kwargs):
        """The body with its defaults: no filters, no repeat, the kind's own."""
        loaded = super().load(data, **kwargs)
        loaded.setdefault("filters", [])
        loaded.setdefault("repeat", 0)
        for name, value in KIND_DEFAULTS.get(loaded["kind"], {}).items():
            loaded.setdefault(name, value)
        return loaded


class AlertChangeSchema(_AlertBody):
    """PATCH /api/alerts/<id>: some of the fields of a new alert, except ``kind`` (fixed for
    life); a rule field of another kind is 409 ALERT_KIND_MISMATCH."""

    @pre_load
    def _something(self, data, **kwargs):
        if isinstance(data, dict) and not data:
            raise ValidationError({"body": ["Give at least one field to change."]})
        return data
