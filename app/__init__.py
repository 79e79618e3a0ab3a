"""Glowing Fiesta: an internal metrics service. ``create_app`` is only wiring.

The folders are the layers; data flows one way through them, and a module imports only from
its own layer and those listed before it (tests/test_layers.py checks this):

1. ``core``: the domain's rules with no I/O (names, times, buckets, tags, zones, sketches).
2. ``config``: every setting, read from the environment in one place.
3. ``infra``: logging, the service's own figures, the Redis client.
4. ``db``: the storage interface (``Store``) and its engines; dialect SQL lives here only.
5. ``ingest``: the write path's front door (group commit, the queue's door and buffer).
6. ``jobs``: RQ entry points over plain data, and how the app queues them.
7. ``api``: the HTTP edge (auth, limits, bodies, headers, errors, schemas, OpenAPI, health).
8. ``blueprints`` and ``commands``: the views and the CLI.
9. ``serve``: start-up checks, the gunicorn worker, the in-process maintenance timer.
"""

from flask import Flask

from app import commands, config, db
from app.api import auth, errors, headers, limits, readiness
from app.blueprints import account, alerts, docs, health, ingest, keys, query, stathat, tags, ui
from app.infra import logs, redis, telemetry
from app.ingest import front_door as ingestion
from app.serve import startup


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
    app.register_blueprint(query.posted)
    app.register_blueprint(tags.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(keys.bp)
    app.register_blueprint(alerts.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(docs.bp)
    app.register_blueprint(stathat.bp)
    app.register_blueprint(ui.bp)
    errors.init_app(app)
    commands.init_app(app)
    return app


def shutdown(app):
    """Commit what this process's writer holds, then close the app's database connections
    (a gunicorn worker's exit, a test's end)."""
    front = app.extensions.get(ingestion.EXTENSION)
    if front is not None:
        front.close()
    store = app.extensions.get(db.EXTENSION)
    if store is not None:
        store.dispose()
