"""Headers every answer carries, OPTIONS in the JSON world, CORS when CORS_ORIGINS asks for it,
and the client address behind TRUSTED_PROXY_HOPS proxies.

- Every response: ``X-Content-Type-Options: nosniff``; /api/ responses also
  ``Cache-Control: no-store`` (they carry data a key may read).
- ``OPTIONS`` on any route needs no key (a browser's preflight carries none) and answers 204
  with ``Allow``.
- CORS headers only for the origins in CORS_ORIGINS (``*`` for any): the preflight names the
  methods and request headers the API takes, answers name the headers a script may read.
"""

from flask import current_app, request
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.middleware.proxy_fix import ProxyFix

REQUEST_HEADERS = "X-API-Key, Authorization, Content-Type, Idempotency-Key, X-Request-ID"
EXPOSED_HEADERS = (
    "X-Request-ID, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After, "
    "Idempotent-Replayed, X-Resolution"
)
PREFLIGHT_MAX_AGE = "600"


def _allowed_methods():
    """The methods the requested path answers, or None when no route matches it."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    try:
        adapter.match(method="--")
    except MethodNotAllowed as exc:
        return sorted(set(exc.valid_methods) | {"OPTIONS"})
    except NotFound:
        return None
    return None


def answer_options():
    """before_request: OPTIONS is answered here, before authentication."""
    if request.method != "OPTIONS":
        return None
    methods = _allowed_methods()
    if methods is None:
        raise NotFound()
    response = current_app.response_class(status=204)
    response.headers["Allow"] = ", ".join(methods)
    if _cors_origin() is not None:
        response.headers["Access-Control-Allow-Methods"] = ", ".join(methods)
        response.headers["Access-Control-Allow-Headers"] = REQUEST_HEADERS
        response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
    return response


def _cors_origin():
    """The Origin to allow for this request, or None."""
    origins = current_app.config["CORS_ORIGINS"]
    origin = request.headers.get("Origin")
    if not origins or not origin:
        return None
    if "*" in origins:
        return "*"
    return origin if origin.rstrip("/") in origins else None


def add_headers(response):
    """after_request: the headers every answer carries."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    if request.path.startswith("/api/"):
        response.headers["Cache-Control"] = "no-store"
    origin = _cors_origin()
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        if origin != "*":
            response.vary.add("Origin")
    return response


def init_app(app):
    """Trust TRUSTED_PROXY_HOPS proxies for the client address; install the hooks (OPTIONS
    before authentication)."""
    hops = app.config["TRUSTED_PROXY_HOPS"]
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    app.before_request(answer_options)
    app.after_request(add_headers)
