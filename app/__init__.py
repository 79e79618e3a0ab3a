"""Glowing Fiesta: an internal metrics service. ``create_app`` is only wiring."""

from flask import Flask

from app import (
    auth,
    cli,
    config,
    db,
    errors,
    headers,
    ingestion,
    limits,
    logs,
    readiness,
    redis,
    startup,
    telemetry,
)
from app.blueprints import account, docs, health, ingest, query, stathat, ui


def create_app(test_config=None):
    """Build the app: defaults → environment → test overrides, then each part's init_app."""
    app = Flask(__name__, static_folder=None)
    app.json.sort_keys = False
    try:
        app.config.update(config.load())
    except config.ConfigError as error:
        if test_config is not None:
            raise
        startup.exit_on(error)  # the CLI and servers: two lines, exit status 2
    if test_config:
        app.config.update(test_config)
        config.validate(app.config)
    logs.init_app(app)
    db.init_app(app)
    redis.init_app(app)
    ingestion.init_app(app)
    readiness.init_app(app)
    telemetry.init_app(app)
    headers.init_app(app)  # OPTIONS is answered before authentication
    auth.init_app(app)  # before the limiter: the per-key limit reads g.api_key
    limits.init_app(app)
    app.register_blueprint(ingest.bp)
    app.register_blueprint(query.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(docs.bp)
    app.register_blueprint(stathat.bp)
    app.register_blueprint(ui.bp)
    errors.init_app(app)
    cli.init_app(app)
    return app
