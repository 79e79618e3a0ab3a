"""The bodies of /api/keys: a new key's name, scope and rate limit, and a change of the last
two. Unknown fields are refused, naming them (a misspelt ``scope`` must not pass silently)."""

from marshmallow import Schema, ValidationError, fields, pre_load, validate

from app.api.auth import DEFAULT_SCOPES, SCOPE_CHOICES
from app.api.schemas import closed_body

_SCOPE = validate.OneOf(
    sorted(SCOPE_CHOICES), error="Must be one of: read, write, read,write, admin."
)
_RATE = validate.Range(min=1, max=2**31 - 1, error="Must be a whole number from 1.")


class _KeyBody(Schema):
    @pre_load
    def _known_fields(self, data, **kwargs):
        return closed_body(data, self.fields, whole=("rate_limit",))


class KeyCreateSchema(_KeyBody):
    """POST /api/keys: ``name`` (required), ``scope`` (default read,write), ``rate_limit``
    (requests a minute; default METRICS_RATE_LIMIT_DEFAULT)."""

    name = fields.String(
        required=True,
        validate=validate.Length(min=1, max=255, error="Must be 1-255 characters."),
    )
    scope = fields.String(load_default=DEFAULT_SCOPES, validate=_SCOPE)
    rate_limit = fields.Integer(strict=True, allow_none=True, load_default=None, validate=_RATE)


class KeyChangeSchema(_KeyBody):
    """PATCH /api/keys/<id>: ``scope`` and/or ``rate_limit`` (null: back to the default)."""

    scope = fields.String(validate=_SCOPE)
    rate_limit = fields.Integer(strict=True, allow_none=True, validate=_RATE)

    @pre_load
    def _something(self, data, **kwargs):
        if isinstance(data, dict) and not data:
            raise ValidationError({"body": ["Give scope and/or rate_limit."]})
        return data
