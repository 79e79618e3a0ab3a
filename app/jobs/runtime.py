"""What a job needs in a worker process: the settings and a database, built once per process
from the environment (a forked work horse builds its own), and the queues by name."""

import os
import threading

from rq import Queue

from app import config
from app.db import Store
from app.infra.redis import connect

_LOCK = threading.RLock()  # building the database reads the settings
_STATE = {}


def settings():
    """The settings, read from the environment once per process."""
    return per_process("settings", config.load)


def database():
    """This process's Store (its pools opened after any fork)."""
    return per_process("database", lambda: Store(settings()))


def redis_connection():
    """This process's Redis client for REDIS_URL."""
    return per_process("redis", lambda: connect(settings()["REDIS_URL"]))


def per_process(name, build, *args):
    """``build(*args)``, run once per process under ``name``; its value."""
    with _LOCK:
        pid, value = _STATE.get(name, (None, None))
        if pid != os.getpid():
            value = build(*args)
            _STATE[name] = (os.getpid(), value)
        return value


def reset():
    """Forget this process's settings, database and Redis client (tests change the env)."""
    with _LOCK:
        state = dict(_STATE)
        _STATE.clear()
    pid, database_ = state.get("database", (None, None))
    if database_ is not None and pid == os.getpid():
        database_.dispose()


def queue(name, connection):
    """An RQ queue (RQ's default serializer, which rq-scheduler's jobs use too)."""
    return Queue(name, connection=connection)
