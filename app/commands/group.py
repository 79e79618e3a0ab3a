"""The command group every CLI command belongs to, and the ``--tenant`` option of the commands
that name a metric or make a key."""

import functools

import click
from flask import current_app
from flask.cli import AppGroup
from redis import RedisError

from app import config
from app.core.tenants import DEFAULT_TENANT
from app.db import get_store
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


def tenant_option(help_text="The tenant (default: default)."):
    """``--tenant NAME``: the command gets the Tenant (an unknown name is a usage error)."""

    def decorate(command):
        @functools.wraps(command)
        def resolved(*args, tenant, **kwargs):
            found = get_store(current_app).tenant(tenant)
            if found is None:
                raise click.BadParameter(
                    f"no tenant named {tenant!r} (flask tenants list)", param_hint="--tenant"
                )
            return command(*args, tenant=found, **kwargs)

        return click.option("--tenant", default=DEFAULT_TENANT, help=help_text)(resolved)

    return decorate
