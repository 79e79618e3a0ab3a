"""GET /openapi.json: the contract as OpenAPI 3.1, built once per app from its settings."""

from flask import Blueprint, current_app

from app.api import openapi

bp = Blueprint("docs", __name__)
EXTENSION = "glowing_fiesta.openapi"


@bp.get("/openapi.json")
def openapi_document():
    """The OpenAPI document (no key needed)."""
    app = current_app
    if EXTENSION not in app.extensions:
        app.extensions[EXTENSION] = openapi.render(app.config)
    return app.response_class(app.extensions[EXTENSION], mimetype="application/json")
