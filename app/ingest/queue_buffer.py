"""Queue mode's durable buffer on Redis, shared by the front door (appends) and the drain jobs
(reads, acknowledgements): its keys, its point encoding and one method per atomic step
(the Lua scripts are in ``app/queue_scripts.py``). No app and no database here.

Keys, under ``glowing-fiesta:buffer:<RQ_INGEST_QUEUE>``:

- ``:points`` — a Redis Stream, one entry per accepted request: ``n`` (its point count) and
  ``p`` (its points, one line each: name, type, value, microseconds since the epoch and the
  tags if any, tab separated; names never hold a tab or a newline; see ``encode``). Read
  through the consumer group ``drainers``; an entry is deleted when its batch is
  acknowledged, so the stream holds exactly the points not yet stored.
- ``:depth`` — points in the stream (the QUEUE_MAX_POINTS bound is checked against it).
- ``:drainer:<slot>`` — a drain slot's lease: the id of the job that holds it, expiring
  QUEUE_CLAIM_IDLE_SECONDS after the job last showed life.
- ``:failed`` — a stream of points a drain could not apply, each line prefixed by the
  refusal's code; ``flask queue requeue`` moves them back.
- ``:stats`` — totals: ``drained_points``, ``reclaimed_entries``, ``failed_drains``,
  ``failed_points`` (now in ``:failed``).
"""

import functools
import uuid
from dataclasses import dataclass, replace
from datetime import timedelta

from app.core.tags import identity, tags_from_text
from app.core.tenants import DEFAULT_TENANT_ID
from app.core.timeutil import EPOCH
from app.core.writes import Point
from app.ingest import queue_scripts

GROUP = "drainers"
DRAIN_JOB = "app.jobs.drain.drain"  # by name: the web side never imports job code
_TYPE_CODES = {"counter": "c", "value": "v"}
_TYPES = {code: name for name, code in _TYPE_CODES.items()}
_MICROSECOND = timedelta(microseconds=1)
IDLE = "idle"  # next_batch: nothing to do now, the slot still held


def encode(points):
    """Points as the buffer's text: one line each; the name of a tenant's other than the
    default one's metric is ``<tenant id>:<name>`` (a name holds no ``:``); a tagged point's
    canonical tag text (it holds no tab or line break: tag values hold no control character)
    is a fifth field."""
    return "\n".join(
        f"{_qualified(p)}\t{_TYPE_CODES[p.type]}\t{float(p.value)!r}\t"
        f"{(p.recorded_at - EPOCH) // _MICROSECOND}" + ("" if p.tags_hash == 0 else f"\t{p.tags}")
        for p in points
    )


def _qualified(point):
    if point.tenant_id == DEFAULT_TENANT_ID:
        return point.name
    return f"{point.tenant_id}:{point.name}"


def decode(payload):
    """The buffer's text → [Point] (the inverse of ``encode``)."""
    points = []
    for line in payload.split("\n"):
        name, kind, value, micros, *tags = line.split("\t")
        tenant, _, bare = name.rpartition(":")
        recorded_at = EPOCH + _MICROSECOND * int(micros)
        tenant_id = int(tenant) if tenant else DEFAULT_TENANT_ID
        point = Point(bare, _TYPES[kind], float(value), recorded_at, tenant_id=tenant_id)
        if tags:
            point = replace(point, tags=tags[0], tags_hash=_hash_of(tags[0]))
        points.append(point)
    return points


@functools.lru_cache(maxsize=4096)
def _hash_of(tags_text):
    return identity(tags_from_text(tags_text))[1]


@dataclass(frozen=True)
class Batch:
    """Entries a drain holds: fixed when first read, the same when reclaimed."""

    kind: str  # "read" or "reclaimed"
    first_id: str
    entries: int
    points: int
    payload: str
    deliveries: int

    @property
    def token(self):
        """Names the batch for good: its first entry and size (stream ids are never reused)."""
        return f"{self.first_id}+{self.entries}"


@dataclass(frozen=True)
class Appended:
    """What an append did: ``replayed`` (the record of an earlier request with the key),
    ``full`` (nothing appended), or the drain slots it took, as [(slot, job id)]."""

    replayed: bytes | None = None
    full: bool = False
    started: tuple = ()


def appended(reply):
    """The APPEND script's reply as an Appended."""
    if reply[0] == b"replay":
        return Appended(replayed=reply[1])
    if reply[0] == b"full":
        return Appended(full=True)
    return Appended(started=tuple(_pairs(reply[1:])))


def _pairs(flat):
    return [(int(flat[i]), flat[i + 1].decode()) for i in range(0, len(flat), 2)]


class Buffer:
    """One queue's buffer on one Redis client."""

    def __init__(self, connection, name, drainers):
        self.connection = connection
        self.name = name
        prefix = f"glowing-fiesta:buffer:{name}"
        self.prefix = prefix
        self.stream, self.depth = f"{prefix}:points", f"{prefix}:depth"
        self.failed, self.stats = f"{prefix}:failed", f"{prefix}:stats"
        self._lease_prefix = f"{prefix}:drainer:"
        self.leases = [self.lease(slot) for slot in range(drainers)]
        self._job_prefix = f"gf-drain.{name}."
        script = connection.register_script
        self._append, self._next = script(queue_scripts.APPEND), script(queue_scripts.NEXT_BATCH)
        self._ack, self._arm = script(queue_scripts.ACK), script(queue_scripts.ARM)
        self._requeue, self._state = script(queue_scripts.REQUEUE), script(queue_scripts.STATE)

    def lease(self, slot):
        """The key of a drain slot's lease."""
        return f"{self._lease_prefix}{slot}"

    def append(self, payload, points, max_points, lease_ms, reservation=None):
        """Append one request's points (and reserve its key: ``(key, record, ttl seconds)``),
        starting drain slots that are free; an Appended."""
        reply = self._append(*self.append_call(payload, points, max_points, lease_ms, reservation))
        return appended(reply)

    def append_call(self, payload, points, max_points, lease_ms, reservation=None):
        """The APPEND script's (keys, args) for ``append``."""
        key, record, ttl = reservation or ("", "", 0)
        keys = [self.stream, self.depth, key, *self.leases]
        return keys, [GROUP, points, payload, max_points, record, ttl, lease_ms, self._job_prefix]

    def reservation(self, key):
        """The record reserved under an idempotency key, or None."""
        return self.connection.get(key)

    def next_batch(self, slot, consumer, lease_ms, max_points, claim_idle_ms, release=True):
        """The drain slot's next Batch (a stalled one first); IDLE when there is nothing to do
        and not ``release``, else None: the slot released (or lost to another job)."""
        keys = [self.stream, self.lease(slot), self.stats]
        args = [GROUP, consumer, lease_ms, max_points, claim_idle_ms, "1" if release else "0"]
        reply = self._next(keys, args)
        if reply[0] == b"idle":
            return IDLE
        if reply[0] in (b"done", b"lost"):
            return None
        kind, first, entries, points, payload, deliveries = reply
        return Batch(kind.decode(), first.decode(), entries, points, payload.decode(), deliveries)

    def ack(self, consumer, batch, written, refused_lines=()):
        """Acknowledge and delete a batch's entries, counting ``written`` points and keeping
        the refused ones (lines prefixed by their code); entries acknowledged (0: another
        consumer took the batch over)."""
        keys = [self.stream, self.depth, self.stats, self.failed]
        args = [GROUP, consumer, batch.first_id, batch.entries, batch.points, written]
        return self._ack(keys, args + [len(refused_lines), "\n".join(refused_lines)])

    def arm(self, claim_idle_ms, lease_ms):
        """Take the free drain slots when there is work; [(slot, job id)] to start."""
        keys = [self.stream, *self.leases]
        prefix = f"{self._job_prefix}{uuid.uuid4().hex}."
        return _pairs(self._arm(keys, [GROUP, claim_idle_ms, lease_ms, prefix]))

    def hand_over(self, slot, consumer, successor, lease_ms):
        """Pass a slot's lease on to the job ``successor``; False if ``consumer`` lost it."""
        with self.connection.pipeline() as pipe:
            pipe.watch(self.lease(slot))
            if pipe.get(self.lease(slot)) != consumer.encode():
                return False
            pipe.multi()
            pipe.set(self.lease(slot), successor, px=lease_ms)
            pipe.xgroup_delconsumer(self.stream, GROUP, consumer)
            pipe.execute()
        return True

    def count_failed_drain(self):
        """One more drain that ended in an error."""
        self.connection.hincrby(self.stats, "failed_drains", 1)

    def failed_records(self, count=100):
        """Up to ``count`` failed-points records: [(id, lines)]."""
        found = self.connection.xrange(self.failed, count=count)
        return [(rid.decode(), fields[b"p"].decode().split("\n")) for rid, fields in found]

    def requeue(self, record_id, lines):
        """Put one failed-points record's points back into the stream; False if gone."""
        payload = "\n".join(line.split("\t", 1)[1] for line in lines)
        keys = [self.stream, self.depth, self.stats, self.failed]
        return bool(self._requeue(keys, [GROUP, record_id, len(lines), payload]))

    def state(self):
        """Depth, lag and totals, as /ready shows them."""
        entries, pending, oldest, seconds, micros, points, drainers, stats = self._state(
            [self.stream, self.depth, self.stats, *self.leases], [GROUP]
        )
        totals = {k.decode(): int(v) for k, v in zip(stats[::2], stats[1::2], strict=True)}
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        lag = None if oldest is None else (now_ms - int(oldest.split(b"-")[0])) / 1000
        return {
            "points": int(points),
            "entries": entries,
            "pending_entries": pending,
            "oldest_seconds": None if lag is None else max(0.0, lag),
            "drainers": drainers,
            "drained_points": totals.get("drained_points", 0),
            "reclaimed_entries": totals.get("reclaimed_entries", 0),
            "failed_drains": totals.get("failed_drains", 0),
            "failed_points": totals.get("failed_points", 0),
        }


def buffer_for(connection, settings):
    """The buffer of the settings' ingest queue."""
    return Buffer(connection, settings["RQ_INGEST_QUEUE"], settings["QUEUE_DRAINERS"])


def buffer_state(connection, settings):
    """The settings' buffer: its name, depth, lag and totals."""
    return {"name": settings["RQ_INGEST_QUEUE"], **buffer_for(connection, settings).state()}


def lease_ms(settings):
    """How long a drain slot stays taken without a sign of life."""
    return settings["QUEUE_CLAIM_IDLE_SECONDS"] * 1000


def start_drainers(queue, started):
    """Enqueue one drain job per slot just taken: [(slot, job id)]."""
    if not started:
        return
    with queue.connection.pipeline() as pipe:
        for slot, job_id in started:
            queue.enqueue_call(
                DRAIN_JOB,
                args=(queue.name, slot, job_id),
                job_id=job_id,
                timeout=DRAIN_JOB_TIMEOUT_SECONDS,
                result_ttl=0,
                failure_ttl=86400,
                pipeline=pipe,
            )
        pipe.execute()


# A drain job hands its slot on after DRAIN_JOB_SECONDS; RQ's own timeout is only a backstop.
DRAIN_JOB_TIMEOUT_SECONDS = 600
