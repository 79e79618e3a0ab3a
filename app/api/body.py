"""Read a request body as a dict: JSON whatever the Content-Type says, or form fields."""

import json
from urllib.parse import parse_qsl

from flask import current_app, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from app.api.errors import ApiError
from app.api.schemas import coerce_form_number, coerce_form_tags, not_an_object
from app.core.constants import MAX_JSON_DEPTH
from app.core.timeutil import json_int


def _reject_constant(token):
    raise ValueError(f"{token} is not valid JSON")


def _too_deep(value, limit=MAX_JSON_DEPTH):
    """Whether ``value`` nests lists and objects more than ``limit`` levels deep."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, dict | list):
                if depth >= limit:
                    return True
                stack.append((child, depth + 1))
    return False


def parse_json(text):
    """JSON text → its value, the one parser of every route: NaN/Infinity, nesting deeper than
    MAX_JSON_DEPTH and malformed text are INVALID_JSON (400)."""
    try:
        data = json.loads(text, parse_constant=_reject_constant, parse_int=json_int)
    except (ValueError, RecursionError) as exc:
        message = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise ApiError("INVALID_JSON", f"Request body is not valid JSON: {message}") from None
    if isinstance(data, dict | list) and _too_deep(data):
        raise ApiError("INVALID_JSON", f"Request body nests deeper than {MAX_JSON_DEPTH} levels")
    return data


def _raw_body():
    if request.content_length is None and request.environ.get("wsgi.input_terminated"):
        # A chunked body has no length up front; Werkzeug would silently cut it at the limit.
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        try:
            raw = request.environ["wsgi.input"].read(limit + 1)
        except OSError as exc:  # gunicorn: bad chunk size, missing terminator, cut short
            raise ApiError("VALIDATION_ERROR", f"Malformed chunked body: {exc}") from None
        if len(raw) > limit:
            raise RequestEntityTooLarge()
        return raw
    raw = request.get_data(cache=True)
    if request.content_length is not None and len(raw) < request.content_length:
        # The client was cut off (or lied): what arrived may be a different number.
        message = f"The body ended after {len(raw)} of its {request.content_length} bytes"
        raise ApiError("VALIDATION_ERROR", message, details={"body": [message]})
    return raw


def raw_body():
    """The request's body bytes, read once (an Idempotency-Key's hash covers them)."""
    if "raw_body" not in g:
        g.raw_body = _raw_body()
    return g.raw_body


def read_body():
    """The body as a dict; form bodies have their ``value`` parsed as a decimal number."""
    raw = raw_body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    stripped = (text or "").strip()
    if text is not None and not stripped and request.mimetype != "multipart/form-data":
        return {}  # nothing sent: the fields' own errors say what is missing
    if text is not None and (stripped[:1] in ("{", "[", '"') or request.is_json):
        data = parse_json(text)  # JSON whatever the Content-Type, multipart included
        if not isinstance(data, dict):
            raise not_an_object("body")
        return data
    if request.mimetype == "multipart/form-data":
        # parsed from the cached body
        return coerce_form_tags(coerce_form_number(request.form.to_dict()))
    if text is None:
        raise ApiError("INVALID_JSON", "Request body is not UTF-8")
    return coerce_form_tags(coerce_form_number(dict(parse_qsl(text, keep_blank_values=True))))
