"""GET / — the chart page for people — and its files under /static.

The page is static HTML, CSS and JavaScript; the browser reads the public JSON API itself with
the key the person enters, so nothing here touches the database or needs a key.
"""

from pathlib import Path

from flask import Blueprint

STATIC_FOLDER = Path(__file__).resolve().parent.parent / "static"

# Only our own files run and the page talks only to this origin. Nothing is inline, so no
# injected markup can run script or style; form-action 'none' keeps the key form from ever
# being submitted as a URL (the script handles it), even before the script has loaded.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self' data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

bp = Blueprint("ui", __name__, static_folder=STATIC_FOLDER, static_url_path="/static")


@bp.get("/")
def chart_page():
    """The chart page: key field, metric list and chart, all drawn by its own script."""
    return bp.send_static_file("index.html")


@bp.after_request
def add_security_headers(response):
    """The strict policy and no MIME sniffing on the page and every static file."""
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
