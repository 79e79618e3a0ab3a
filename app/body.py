"""Read a request body as a dict: JSON whatever the Content-Type says, or form fields."""

import json
from urllib.parse import parse_qsl

from flask import current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from app.errors import ApiError
from app.schemas import coerce_form_number, not_an_object


def _reject_constant(token):
    raise ValueError(f"{token} is not valid JSON")


def _parse_json(text):
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ApiError("INVALID_JSON", f"Request body is not valid JSON: {exc}") from None


def _raw_body():
    if request.content_length is None and request.environ.get("wsgi.input_terminated"):
        # A chunked body has no length up front; Werkzeug would silently cut it at the limit.
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        raw = request.environ["wsgi.input"].read(limit + 1)
        if len(raw) > limit:
            raise RequestEntityTooLarge()
        return raw
    return request.get_data(cache=True)


def read_body():
    """The body as a dict; form bodies have their ``value`` parsed as a decimal number."""
    if request.mimetype == "multipart/form-data":
        return coerce_form_number(request.form.to_dict())
    raw = _raw_body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError("INVALID_JSON", "Request body is not UTF-8") from None
    stripped = text.strip()
    if not stripped:
        return {}
    if stripped[0] in '{["' or request.is_json:
        data = _parse_json(text)
        if not isinstance(data, dict):
            raise not_an_object("body")
        return data
    return coerce_form_number(dict(parse_qsl(text, keep_blank_values=True)))
