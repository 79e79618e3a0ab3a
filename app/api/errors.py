"""One JSON envelope for every error path: ours, Werkzeug's, the database's and the unexpected."""

import logging

from flask import jsonify, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from app.db.errors import DatabaseError, PointsUnavailable, is_unavailable_error
from app.ingest.group_commit import WriterUnavailable

log = logging.getLogger(__name__)

# Werkzeug status → our stable code, for errors raised outside our own views.
_HTTP_CODES = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    429: "RATE_LIMITED",
    503: "SERVICE_UNAVAILABLE",
}

from app.core.errors import (  # noqa: E402 - the rendering below needs them; callers too
    ERROR_CODES,
    RETRY_AFTER_SECONDS,
    ApiError,
    ServiceUnavailable,
    envelope,
    metric_limit_exceeded,
    metric_not_found,
)

__all__ = [
    "ERROR_CODES",
    "RETRY_AFTER_SECONDS",
    "ApiError",
    "ServiceUnavailable",
    "envelope",
    "error_response",
    "from_validation_error",
    "init_app",
    "metric_limit_exceeded",
    "metric_not_found",
]


def error_response(error):
    """Render an ``ApiError`` as the JSON envelope with its status and headers."""
    response = jsonify(envelope(error))
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def from_validation_error(exc, what=None):
    """A marshmallow ValidationError as the ApiError a client sees: VALIDATION_ERROR (or the
    error's own code) whose details name each field."""
    messages = exc.messages if isinstance(exc.messages, dict) else {"body": exc.messages}
    summary = getattr(exc, "summary", None)
    if summary is None:
        what = what or ("Invalid query" if request.method == "GET" else "Invalid request")
        fields = "; ".join(f"{field}: {_flat(msgs)}" for field, msgs in messages.items())
        summary = f"{what}: {fields}"
    return ApiError(getattr(exc, "code", "VALIDATION_ERROR"), summary, details=messages)


def _flat(messages):
    if isinstance(messages, dict):
        return " ".join(_flat(m) for m in messages.values())
    if isinstance(messages, list):
        return " ".join(map(str, messages))
    return str(messages)


def _from_validation_error(exc):
    return error_response(from_validation_error(exc))


def _from_http_exception(exc):
    code = _HTTP_CODES.get(
        exc.code, "INTERNAL_ERROR" if (exc.code or 500) >= 500 else "BAD_REQUEST"
    )
    message = exc.description or exc.name
    headers = {}
    if exc.code == 405 and getattr(exc, "valid_methods", None):
        headers["Allow"] = ", ".join(exc.valid_methods)
    return error_response(ApiError(code, message, status=exc.code or 500, headers=headers))


def _from_database_error(exc):
    if is_unavailable_error(exc):
        log.warning("database unavailable: %s", exc.orig)
        return error_response(ServiceUnavailable())
    log.exception("database error")
    return error_response(ApiError("INTERNAL_ERROR", "Internal server error", status=500))


def _from_writer_unavailable(exc):
    log.warning("writer unavailable: %s", exc)
    return error_response(ServiceUnavailable(f"Cannot store the points now: {exc}"))


def _from_points_unavailable(exc):
    log.warning("points engine unavailable: %s", exc)
    return error_response(ServiceUnavailable())


def _from_unexpected(exc):
    log.exception("unhandled error")
    return error_response(ApiError("INTERNAL_ERROR", "Internal server error", status=500))


def init_app(app):
    """Register the handlers that turn every exception into the JSON envelope."""
    app.register_error_handler(ApiError, error_response)
    app.register_error_handler(ValidationError, _from_validation_error)
    app.register_error_handler(HTTPException, _from_http_exception)
    app.register_error_handler(DatabaseError, _from_database_error)
    app.register_error_handler(WriterUnavailable, _from_writer_unavailable)
    app.register_error_handler(PointsUnavailable, _from_points_unavailable)
    app.register_error_handler(Exception, _from_unexpected)
