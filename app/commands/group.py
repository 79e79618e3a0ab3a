"""The command group every CLI command belongs to."""

import click
from flask import current_app
from flask.cli import AppGroup
from redis import RedisError

from app import config
from app.db.errors import DatabaseError, explain


class CommandGroup(AppGroup):
    """A Flask CLI group whose commands end, when the database or Redis is missing or
    unreachable, on one line saying so (exit status 1) — not a traceback, unless
    LOG_LEVEL=DEBUG."""

    def invoke(self, ctx):
        """Run the command; explain a database or Redis failure in one line."""
        try:
            return super().invoke(ctx)
        except (DatabaseError, RedisError) as error:
            if config.debug_requested():
                raise
            if isinstance(error, RedisError):
                raise click.ClickException(f"cannot use Redis (REDIS_URL): {error}") from None
            url = current_app.config["DATABASE_URL"]
            raise click.ClickException(explain(error, url)) from None
