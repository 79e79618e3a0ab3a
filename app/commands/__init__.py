"""The Flask CLI: ``admin`` (schema, keys, metrics) and ``operations`` (workers, the scheduler,
queues, partitions, retention, rollups). Commands call the store, the ingest queue and the
jobs' plumbing like views do; a missing or unreachable database ends them on one line."""

from app.commands import admin, operations


def init_app(app):
    """Register every command group."""
    admin.init_app(app)
    operations.init_app(app)
