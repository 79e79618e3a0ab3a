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

from app import config
from app.infra.redis import connect
from app.ingest.front_door import check_queue_durability

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
