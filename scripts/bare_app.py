"""The bare HTTP ceiling: a minimal Flask app that does what every ingest request must do
(read the body, parse it as JSON, answer 201 with a small JSON body) and nothing else.

Served by the same gunicorn.conf.py as the service, by naming it on the command line
(``gunicorn --config gunicorn.conf.py scripts.bare_app:app``), so worker class, workers,
threads and keep-alive are the service's own.
"""

import json

from flask import Flask, jsonify, request

from app.db import EXTENSION as DB_EXTENSION


class _NoDatabase:
    """Stands in for the app's Database: gunicorn.conf.py's worker hooks dispose it."""

    def dispose(self, close=True):
        """Nothing to close."""


app = Flask(__name__, static_folder=None)
app.extensions[DB_EXTENSION] = _NoDatabase()
app.config["MAINTENANCE_RUNNER"] = "off"  # gunicorn.conf.py asks; nothing to maintain here


@app.get("/health")
def health():
    """What the harness polls before it hands the server over."""
    return jsonify(success=True, status="ok")


@app.post("/api/metrics/<path:kind>")
def record(kind):
    """Parse the body as JSON and answer as the service's ingest routes do."""
    json.loads(request.get_data())
    return jsonify(success=True, message=f"{kind} recorded"), 201
