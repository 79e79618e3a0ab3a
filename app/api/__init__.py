"""The HTTP edge: authentication and scopes, rate limits, reading bodies, headers and CORS,
the JSON error envelope, the marshmallow schemas and the OpenAPI document built from them,
and what /ready and /metrics report. Views (``app/blueprints``) sit on top of it."""
