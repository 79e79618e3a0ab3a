"""Storage: the ``Store`` every other layer calls (app/db/store.py) and its engines."""

from app.db.store import Preparation, Store, create_engine_for
from app.db.transaction import run_in_transaction, run_read

__all__ = [
    "Preparation",
    "Store",
    "create_engine_for",
    "get_store",
    "init_app",
    "run_in_transaction",
    "run_read",
]

EXTENSION = "glowing_fiesta.db"


def get_store(app):
    """The app's ``Store``."""
    return app.extensions[EXTENSION]


def init_app(app):
    """Create the app's store (the schema comes from ``flask db migrate``)."""
    app.extensions[EXTENSION] = Store(app.config)
