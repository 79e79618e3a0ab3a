"""Queue mode's front door (INGEST_MODE=queue): decide everything a drain could refuse, then
append the accepted points to the durable buffer and answer 202.

At the door, in the request: each name's metric comes from a per-process cache (an entry
expires NAME_CACHE_SECONDS after it was stored, however often it is read, so a deleted and
recreated name is seen within that time) or, for names it does not hold, from one short
transaction that creates the new ones (``metrics.resolve``, as the synchronous writer does).
Points of a metric of the other type are refused here (409, or a per-item error), so a 202
never hides a refusal. Then one Lua call on Redis appends the points together with the
Idempotency-Key's reservation and checks QUEUE_MAX_POINTS; Redis unreachable, or the buffer
full, is a 503 with Retry-After and nothing reserved.
"""

import json
import logging
import threading
from collections import Counter
from dataclasses import replace

from cachetools import TTLCache
from redis import RedisError
from rq import Queue

from app.core.errors import ServiceUnavailable
from app.core.timeutil import utcnow
from app.core.writes import WriteResult, replay
from app.db import get_store
from app.db.receipts import TTL, Recorded
from app.infra.redis import get_redis
from app.ingest.queue_buffer import buffer_for, encode, lease_ms, start_drainers

log = logging.getLogger(__name__)

NAME_CACHE_SECONDS = 4.0
IDEMPOTENCY_PREFIX = "glowing-fiesta:idempotency"  # the keys the previous queue design used
EXTENSION = "glowing_fiesta.queue_front"


class _Front:
    """Per app: the buffer on the app's Redis and the name → Metric cache."""

    def __init__(self, app):
        self.buffer = buffer_for(get_redis(app), app.config)
        # RQ's default serializer, which the drain jobs (and rq-scheduler's) use too.
        self.queue = Queue(app.config["RQ_INGEST_QUEUE"], connection=get_redis(app))
        # metric key (tenant id, name) → Metric; a read never extends an entry's life
        self.names = TTLCache(maxsize=100_000, ttl=NAME_CACHE_SECONDS)
        # (metric key, tags hash) → (metric id, series id) of series seen at this door
        self.series = TTLCache(maxsize=200_000, ttl=NAME_CACHE_SECONDS)
        self.lock = threading.Lock()


def _front(app):
    front = app.extensions.get(EXTENSION)
    if front is None:
        front = app.extensions.setdefault(EXTENSION, _Front(app))
    return front


def _metrics(app, front, points):
    """{metric key: Metric} for every metric among ``points``, the new ones created now."""
    wanted = {}
    for point in points:
        wanted.setdefault(point.key, point.type)
    with front.lock:
        known = {key: front.names[key] for key in wanted if key in front.names}
    missing = {key: kind for key, kind in wanted.items() if key not in known}
    for tenant_id in sorted({tenant_id for tenant_id, _ in missing}):
        mine = {name: kind for (tenant, name), kind in missing.items() if tenant == tenant_id}
        found = {m.key: m for m in _create(app, tenant_id, mine).values()}
        with front.lock:
            front.names.update(found)
        known.update(found)
    return known


def _create(app, tenant_id, wanted):
    """A tenant's metrics of ``wanted`` ({name: type if new}), creating the missing ones in
    one transaction; a name past the tenant's metric limit is left out."""
    return get_store(app).resolve_metrics(tenant_id, wanted, utcnow())


def _series(app, front, known, points):
    """The (metric key, tags hash) pairs refused for a series limit; the new series of the
    others are made now (known ones cost no database round trip)."""
    wanted = {}
    for point in points:
        metric = known.get(point.key)
        if metric is not None and metric.type == point.type:
            with front.lock:
                seen = front.series.get((point.key, point.tags_hash))
            if seen is None or seen[0] != metric.id:
                wanted.setdefault(point.key, {})[point.tags_hash] = point.tags
    refused = set()
    for key, sets in wanted.items():
        placed = get_store(app).resolve_series(known[key], sets, utcnow())
        for tags_hash, series_id in placed.items():
            if series_id is None:
                refused.add((key, tags_hash))
            else:
                with front.lock:
                    front.series[key, tags_hash] = (known[key].id, series_id)
    return refused


def _door(app, front, points):
    """The WriteResult of the door's check: points of a metric of another type, of a new
    metric past its tenant's limit, or of a new series past a series limit, refused."""
    known = _metrics(app, front, points)
    refused = _series(app, front, known, points)
    result = WriteResult(queued=True)
    for position, point in enumerate(points):
        metric = known.get(point.key)
        if metric is None:
            result.limited.append(position)
        elif metric.type != point.type:
            result.mismatched.append((position, metric))
        elif (point.key, point.tags_hash) in refused:
            result.series_limited.append(position)
        else:
            result.written.append(position)
    return result


def idempotency_key(receipt):
    """Where a queued request's Idempotency-Key is reserved."""
    return f"{IDEMPOTENCY_PREFIX}:{receipt.scope}:{receipt.key}"


def _replay(receipt, reserved):
    """The first answer to a key reserved in Redis (the same rule as a stored receipt's)."""
    earlier = json.loads(reserved)
    body = json.dumps(earlier["body"], separators=(",", ":"))
    return replay(receipt, Recorded(earlier["hash"], earlier["status"], body))


def _unavailable(exc):
    log.warning("queue unavailable: %s", exc)
    return ServiceUnavailable("The queue (Redis) is unavailable; retry shortly")


def recorded_answer(app, receipt):
    """The answer a queued request with this key got (or CONFLICT), or None."""
    try:
        recorded = _front(app).buffer.reservation(idempotency_key(receipt))
    except RedisError as exc:
        raise _unavailable(exc) from exc
    return None if recorded is None else _replay(receipt, recorded)


def enqueue(app, points, respond, receipt):
    """Check ``points`` at the door and append the accepted ones; the client's Answer."""
    if receipt is not None:
        earlier = recorded_answer(app, receipt)  # a repeat creates no metric
        if earlier is not None:
            return earlier
    front = _front(app)
    result = _door(app, front, points)
    answer = respond(result)
    accepted = [points[position] for position in result.written] if answer.status < 300 else []
    answer = replace(answer, stored=Counter(point.type for point in accepted))
    reservation = None
    if receipt is not None:
        record = json.dumps(
            {"hash": receipt.request_hash, "status": answer.status, "body": answer.body}
        )
        reservation = (idempotency_key(receipt), record, int(TTL.total_seconds()))
    if not accepted and reservation is None:
        return answer  # nothing to keep
    try:
        appended = front.buffer.append(
            encode(accepted), len(accepted), app.config["QUEUE_MAX_POINTS"],
            lease_ms(app.config), reservation,
        )  # fmt: skip
    except RedisError as exc:
        raise _unavailable(exc) from exc
    if appended.replayed is not None:  # a concurrent request with the key came first
        return _replay(receipt, appended.replayed)
    if appended.full:
        raise ServiceUnavailable("The queue is full (QUEUE_MAX_POINTS); retry shortly")
    _start(front, appended.started)
    return answer


def _start(front, started):
    """Enqueue drain jobs for the slots the append took. The points are safe already: if this
    fails, the slot's lease lapses and a worker's next look starts the drain."""
    try:
        start_drainers(front.queue, started)
    except RedisError as exc:
        log.warning("could not start a queue drainer (a worker will): %s", exc)
