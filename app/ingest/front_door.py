"""The write path's front door: validated points with their answer rule go to this process's
group-commit writer (INGEST_MODE=sync: a 201 is a committed transaction) or to the queue's door
(INGEST_MODE=queue: a 202 is a durable Redis append). Per app, one ``FrontDoor`` in
app.extensions owns the writer (created on first use after any fork) and the queue's door.
"""

import logging
import os
import threading

from redis import RedisError

from app.config import ConfigError
from app.core.timeutil import utcnow
from app.core.writes import WriteRequest
from app.db import get_store
from app.infra import telemetry
from app.infra.redis import get_redis
from app.ingest import queue_front
from app.ingest.group_commit import GroupWriter

log = logging.getLogger(__name__)

EXTENSION = "glowing_fiesta.front_door"


class FrontDoor:
    """One app's way in for writes."""

    def __init__(self, app):
        self.app = app
        self.store = get_store(app)
        self.queued = app.config["INGEST_MODE"] == "queue"
        config = app.config
        self.writer_options = {
            "linger_ms": config["WRITER_LINGER_MS"],
            "max_batch": config["WRITER_MAX_BATCH"],
            "queue_limit": config["WRITER_QUEUE_LIMIT"],
            "wait_seconds": config["WRITER_WAIT_SECONDS"],
            "observer": telemetry.observe_commit,
        }
        self._writer = None
        self._writer_pid = None
        self._lock = threading.Lock()

    def writer(self):
        """This process's GroupWriter, created on first use after any fork."""
        with self._lock:
            if self._writer is None or self._writer_pid != os.getpid():
                self._writer = GroupWriter(self.store, **self.writer_options)
                self._writer_pid = os.getpid()
            return self._writer

    def record(self, points, respond, receipt):
        """Store (or enqueue) ``points``; the Answer ``respond`` gave (or a replayed one)."""
        if self.queued:
            return queue_front.enqueue(self.app, points, respond, receipt)
        return self.writer().submit(WriteRequest(points, respond, receipt))

    def recorded_answer(self, receipt):
        """The answer an earlier request with this key got (or CONFLICT), or None."""
        if self.queued:
            return queue_front.recorded_answer(self.app, receipt)
        return self.store.recorded_answer(receipt, utcnow())

    def close(self, timeout=30):
        """Commit what waits in this process's writer and stop it."""
        with self._lock:
            writer = self._writer if self._writer_pid == os.getpid() else None
            self._writer = None
        if writer is not None:
            writer.close(timeout)


def get_front_door(app):
    """The app's FrontDoor."""
    return app.extensions[EXTENSION]


# What a Redis must report before queue mode trusts it with 202'd points: every write in the
# append-only file and on disk before the answer, and never a key evicted.
DURABLE_REDIS = {"appendonly": "yes", "appendfsync": "always", "maxmemory-policy": "noeviction"}


def check_queue_durability(client, allow_volatile):
    """Queue mode keeps 202'd points in Redis: refuse to start unless Redis loses no write it
    acknowledged (DURABLE_REDIS), or QUEUE_ALLOW_VOLATILE_REDIS says a development Redis will do."""
    try:
        reported = {name: client.config_get(name).get(name) for name in DURABLE_REDIS}
    except RedisError as exc:
        problem = f"its configuration cannot be read ({exc})"
    else:
        wrong = [f"{name} {reported[name]}" for name, want in DURABLE_REDIS.items()
                 if reported[name] != want]  # fmt: skip
        problem = f"it has {', '.join(wrong)}" if wrong else None
    if problem is None:
        return
    needed = ", ".join(f"{name} {want}" for name, want in DURABLE_REDIS.items())
    message = f"INGEST_MODE=queue needs a Redis with {needed}, but {problem}"
    if not allow_volatile:
        raise ConfigError(
            f"{message}: set them in redis.conf (or CONFIG SET), or "
            "QUEUE_ALLOW_VOLATILE_REDIS=true for development"
        )
    log.warning(
        "%s; running anyway because QUEUE_ALLOW_VOLATILE_REDIS=true: queued points may be lost",
        message,
    )


def init_app(app):
    """The app's front door; in queue mode, check at start that Redis is durable enough to
    hold 202'd points."""
    if app.config["INGEST_MODE"] == "queue":
        check_queue_durability(get_redis(app), app.config["QUEUE_ALLOW_VOLATILE_REDIS"])
    app.extensions[EXTENSION] = FrontDoor(app)
