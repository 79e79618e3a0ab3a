"""The errors a client can see, as values: a stable code, a status, a message and details,
and the JSON envelope they share. Raised anywhere below the HTTP edge; rendered by
app/api/errors.py."""

RETRY_AFTER_SECONDS = 5

# Every error code a client may see, with its status: the README and /openapi.json list these.
ERROR_CODES = {
    "VALIDATION_ERROR": 400,
    "INVALID_JSON": 400,
    "TIMESTAMP_OUT_OF_RANGE": 400,
    "BATCH_TOO_LARGE": 400,
    "QUERY_TOO_LARGE": 400,
    "RESOLUTION_UNAVAILABLE": 400,
    "BAD_REQUEST": 400,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "METRIC_NOT_FOUND": 404,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "METRIC_TYPE_MISMATCH": 409,
    "ALERT_KIND_MISMATCH": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "IDEMPOTENCY_KEY_REUSED": 422,
    "METRIC_LIMIT_EXCEEDED": 422,
    "SERIES_LIMIT_EXCEEDED": 422,
    "RATE_LIMITED": 429,
    "INTERNAL_ERROR": 500,
    "SERVICE_UNAVAILABLE": 503,
}


class ApiError(Exception):
    """An error the client sees as ``{"success": false, "error": {code, message, details?}}``."""

    def __init__(self, code, message, status=400, details=None, headers=None, extra=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.details = details
        self.headers = headers or {}
        self.extra = extra or {}


class ServiceUnavailable(ApiError):
    """The database (or another dependency) cannot be reached: 503 with Retry-After."""

    def __init__(self, message="The database is unavailable; retry shortly"):
        super().__init__(
            "SERVICE_UNAVAILABLE",
            message,
            status=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


def metric_not_found(names):
    """The 404 for metrics that do not exist, naming them."""
    quoted = ", ".join(f"'{name}'" for name in names)
    return ApiError(
        "METRIC_NOT_FOUND", f"No metric named {quoted}", status=404, details={"name": list(names)}
    )


def metric_limit_exceeded(name, limit):
    """The 422 for a new metric past the tenant's metric limit."""
    return ApiError(
        "METRIC_LIMIT_EXCEEDED",
        f"Cannot create metric '{name}': at most {limit} metrics may exist "
        "(delete unused ones to make room)",
        status=422,
    )


def series_limit_exceeded(name, per_metric, per_tenant):
    """The 422 for a point that would make a series past METRICS_MAX_SERIES_PER_METRIC or the
    tenant's series limit."""
    return ApiError(
        "SERIES_LIMIT_EXCEEDED",
        f"Metric '{name}' cannot take a new tag set: at most {per_metric} series a metric and "
        f"{per_tenant} in all may exist (keep unbounded values such as ids out of tags)",
        status=422,
    )


def envelope(error):
    """An ``ApiError`` as the JSON body every error shares."""
    body = {"success": False, "error": {"code": error.code, "message": error.message}}
    if error.details:
        body["error"]["details"] = error.details
    body.update(error.extra)
    return body
