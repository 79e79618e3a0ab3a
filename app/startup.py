"""Failing at start the way a person can act on: one or two lines naming the setting (or the
database) and the fix, exit status 2, and no traceback unless LOG_LEVEL=DEBUG.

``check_server`` runs in gunicorn's master (gunicorn.conf.py) before any worker exists: the
settings, the port, and in queue mode the durability of Redis. ``exit_on`` turns a start-up
error of the Flask CLI or the app factory into the same short message, and ``CommandGroup``
ends a CLI command that finds the database (or Redis) missing or unreachable on one line.
"""

import errno
import socket
import sys

import click
from flask import current_app
from flask.cli import AppGroup
from redis import RedisError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from app import config
from app.db.errors import mysql_code
from app.ingestion import check_queue_durability
from app.redis import connect

PROGRAM = "glowing-fiesta"


class StartupError(Exception):
    """The service cannot start as configured; the message says why and what to do."""


def exit_on(error, environ=None):
    """Print ``error`` in one or two lines and exit with status 2 (LOG_LEVEL=DEBUG: raise it,
    traceback and all)."""
    if config.debug_requested(environ):
        raise error
    print(f"{PROGRAM}: {error}", file=sys.stderr)
    sys.exit(2)


def check_port(host, port):
    """StartupError when something listens on host:port already."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
            raise StartupError(
                f"port {port} on {host} is in use: stop what listens there, or set PORT "
                f"(e.g. PORT={port + 1} make run)"
            ) from None


def check_queue_redis(settings):
    """In queue mode, Redis must keep what it is given (see ``check_queue_durability``)."""
    if settings["INGEST_MODE"] == "queue":
        client = connect(settings["REDIS_URL"])
        check_queue_durability(client, settings["QUEUE_ALLOW_VOLATILE_REDIS"])


def check_server(environ=None):
    """gunicorn's settings, after every check that can fail before a worker starts; exits
    with a short message (status 2) on the first that fails."""
    try:
        settings = config.server_settings(environ)
        host, port = settings["bind"].rsplit(":", 1)
        check_port(host.strip("[]"), int(port))
        check_queue_redis(config.load(environ))
    except (config.ConfigError, StartupError) as error:
        exit_on(error, environ)
    return settings


def database_problem(error, url):
    """What a person should know about a database error met by a command, naming
    DATABASE_URL (its password hidden) and the likely fix."""
    shown = make_url(url).render_as_string(hide_password=True)
    code = mysql_code(error)
    database = make_url(url).database
    if code == 1049:
        return (
            f"the database {database!r} does not exist ({shown}): create it "
            f"(CREATE DATABASE {database} CHARACTER SET utf8mb4; see the README's Production "
            "section) or fix DATABASE_URL"
        )
    if code in (1044, 1045):
        return f"the database refused the user in DATABASE_URL ({shown}): {error.orig.args[1]}"
    if code in (2002, 2003, 2005, 2006, 2013):
        return f"cannot reach the database at {shown}: start it, or fix DATABASE_URL"
    if "unable to open database" in str(error.orig):
        return f"cannot open the SQLite file of DATABASE_URL ({shown}): check its directory"
    return f"the database at {shown} failed: {error.orig}"


class CommandGroup(AppGroup):
    """A Flask CLI group whose commands end, when the database or Redis is missing or
    unreachable, on one line saying so (exit status 1) — not a traceback, unless
    LOG_LEVEL=DEBUG."""

    def invoke(self, ctx):
        """Run the command; explain a database or Redis failure in one line."""
        try:
            return super().invoke(ctx)
        except (DBAPIError, RedisError) as error:
            if config.debug_requested():
                raise
            if isinstance(error, RedisError):
                raise click.ClickException(f"cannot use Redis (REDIS_URL): {error}") from None
            url = current_app.config["DATABASE_URL"]
            raise click.ClickException(database_problem(error, url)) from None
