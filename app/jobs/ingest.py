"""Queued ingestion (INGEST_MODE=queue): a request's validated points become one RQ job and the
client gets 202; an RQ worker writes them with the same transaction as the synchronous path.

At the door, points whose metric already exists with the other type are refused (409 or a
per-item error), from a few-seconds cache of metric types. An Idempotency-Key is reserved in
Redis in the same MULTI as the enqueue (WATCH makes a concurrent duplicate see the first one's
answer). Each job's id is recorded in the database transaction that applies it, so a job run
twice — a worker killed after COMMIT, before RQ heard of it — adds nothing the second time.

When the queue is deep, a job also claims up to COALESCE_JOBS more waiting jobs — moved
atomically onto a claims list of its own — and writes them all in one transaction; afterwards
their job records are deleted. If that transaction fails they go back to the head of the
queue; if the worker dies, the job is retried by RQ (as any abandoned job) and its retry
takes over the claims list.
"""

import json
import logging
import threading
from collections import Counter
from dataclasses import replace
from datetime import timedelta

from cachetools import TTLCache
from redis import WatchError
from rq import Retry, get_current_job
from rq.job import Job

from app.db import get_db, metrics, rollups, run_in_transaction, run_read
from app.db.receipts import TTL, job_receipt
from app.db.writer import (
    CONFLICT,
    Answer,
    Point,
    WriteRequest,
    WriteResult,
    storage_options,
    write_requests,
)
from app.jobs import runtime
from app.redis import get_redis
from app.timeutil import EPOCH, utcnow

log = logging.getLogger(__name__)

COALESCE_JOBS = 500
JOB_TIMEOUT_SECONDS = 300
# Failed jobs are retried (at once the first time: an abandoned job needs no pause) with growing
# pauses, then kept in RQ's failed registry.
RETRY = Retry(max=5, interval=[0, 5, 30, 120, 600])
FAILED_JOB_TTL = 30 * 86400
IDEMPOTENCY_PREFIX = "glowing-fiesta:idempotency"
TYPE_CACHE_SECONDS = 4.0
_CLAIM_SCRIPT = """
for i = 1, tonumber(ARGV[1]) do
    if not redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT') then break end
end
"""
_RELEASE_SCRIPT = """
while redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT') do end
"""


def _encode(points):
    """Points as plain JSON data: [name, type, value, microseconds since the epoch]."""
    return [
        [p.name, p.type, p.value, (p.recorded_at - EPOCH) // timedelta(microseconds=1)]
        for p in points
    ]


def _decode(rows):
    return [
        Point(name, kind, value, EPOCH + timedelta(microseconds=us))
        for name, kind, value, us in rows
    ]


class TypeCache:
    """name → stored Metric, kept a few seconds: the door's check. Names not stored yet are
    not remembered: the next request may find the metric a worker has just created."""

    def __init__(self):
        self._entries = TTLCache(maxsize=100_000, ttl=TYPE_CACHE_SECONDS)
        self._lock = threading.Lock()

    def types(self, engine, names):
        """{name: Metric} of the stored ones among ``names``: cached, or one query for the rest."""
        with self._lock:
            known = {n: self._entries[n] for n in names if n in self._entries}
        missing = [n for n in names if n not in known]
        if missing:
            found = run_read(engine, metrics.find, missing)
            with self._lock:
                self._entries.update(found)
            known.update(found)
        return known


def _door(app, points):
    """The WriteResult of the door's check: points of known metrics of another type refused."""
    cache = app.extensions.setdefault("glowing_fiesta.type_cache", TypeCache())
    stored = cache.types(get_db(app).read, sorted({p.name for p in points}))
    result = WriteResult(queued=True)
    for position, point in enumerate(points):
        metric = stored.get(point.name)
        if metric is not None and metric.type != point.type:
            result.mismatched.append((position, metric))
        else:
            result.written.append(position)
    return result


def enqueue(app, points, respond, receipt):
    """Queue ``points`` as one job (those the door accepts); the client's Answer."""
    result = _door(app, points)
    answer = respond(result)
    accepted = [points[position] for position in result.written] if answer.status < 300 else []
    answer = replace(answer, stored=Counter(point.type for point in accepted))
    connection = get_redis(app)
    queue = runtime.queue(app.config["RQ_INGEST_QUEUE"], connection)
    if receipt is None:
        if accepted:
            _enqueue_job(queue, accepted)
        return answer
    return _enqueue_once(connection, queue, accepted, receipt, answer)


def _enqueue_job(queue, points, pipeline=None):
    return queue.enqueue_call(
        apply_points,
        args=(_encode(points),),
        timeout=JOB_TIMEOUT_SECONDS,
        result_ttl=0,
        failure_ttl=FAILED_JOB_TTL,
        retry=RETRY,
        pipeline=pipeline,
    )


def _idempotency_key(receipt):
    return f"{IDEMPOTENCY_PREFIX}:{receipt.scope}:{receipt.key}"


def _enqueue_once(connection, queue, points, receipt, answer):
    """Reserve the Idempotency-Key and enqueue in one MULTI; a key already reserved gets the
    first answer (or CONFLICT) and enqueues nothing."""
    key = _idempotency_key(receipt)
    record = json.dumps(
        {"hash": receipt.request_hash, "status": answer.status, "body": answer.body}
    )
    with connection.pipeline() as pipe:
        while True:
            try:
                pipe.watch(key)
                earlier = pipe.get(key)
                if earlier is not None:
                    pipe.reset()
                    return _replay(receipt, earlier)
                pipe.multi()
                pipe.set(key, record, ex=int(TTL.total_seconds()))
                if points:
                    _enqueue_job(queue, points, pipeline=pipe)
                pipe.execute()
                return answer
            except WatchError:
                continue


def _replay(receipt, recorded):
    earlier = json.loads(recorded)
    if earlier["hash"] != receipt.request_hash:
        return CONFLICT
    return Answer(earlier["status"], earlier["body"], replayed=True)


def recorded_answer(app, receipt):
    """The answer a queued request with this key got (or CONFLICT), or None."""
    recorded = get_redis(app).get(_idempotency_key(receipt))
    return None if recorded is None else _replay(receipt, recorded)


def _applied(result):
    """A job's own answer: nothing is told to anyone, the receipt alone matters."""
    return Answer(200, {"written": len(result.written), "mismatched": len(result.mismatched)})


def apply_points(rows):
    """RQ job: write one request's queued points — with other waiting jobs' points when the
    queue is deep — in one transaction; a job already applied adds nothing."""
    job = get_current_job()
    queue = runtime.queue(job.origin, job.connection)
    claims = f"{queue.key}:claimed:{job.id}"  # the jobs this one took, until written
    extras = _claim(queue, claims, COALESCE_JOBS if queue.count else 0)
    jobs = [(job.id, rows)] + [(extra.id, extra.args[0]) for extra in extras]
    requests = [WriteRequest(_decode(data), _applied, job_receipt(job_id)) for job_id, data in jobs]
    keep_rollups, keep_raw, max_metrics = storage_options(runtime.settings())
    try:
        engine = runtime.database().write
        if not keep_rollups:  # as the group writer: the tiers are complete nowhere from now on
            runtime.per_process("rollups disowned", run_in_transaction, engine, rollups.disown)
        answers = run_in_transaction(
            engine, write_requests, requests, utcnow(), keep_rollups, keep_raw, max_metrics
        )
    except Exception:
        _release(queue, claims)
        raise
    _finish(queue, claims, extras)
    _report(jobs, answers)
    return len(jobs)


def _claim(queue, claims, limit):
    """Move up to ``limit`` waiting job ids onto this job's claims list in one atomic step, so
    a worker dying at any moment leaves them where this job's retry finds them (with any an
    earlier, interrupted run of it claimed); their Jobs."""
    claim = queue.connection.register_script(_CLAIM_SCRIPT)
    claim([queue.key, claims], [limit])
    ids = [i.decode() for i in queue.connection.lrange(claims, 0, -1)]
    jobs = Job.fetch_many(ids, connection=queue.connection, serializer=queue.serializer)
    found = [j for j in jobs if j is not None and j.func_name == _FUNC_NAME]
    strays = [
        i for i, j in zip(ids, jobs, strict=True) if j is not None and j.func_name != _FUNC_NAME
    ]
    if strays:  # not ours to run: back to the queue
        with queue.connection.pipeline() as pipe:
            for job_id in strays:
                pipe.lrem(claims, 1, job_id)
                pipe.lpush(queue.key, job_id)
            pipe.execute()
    return found


def _release(queue, claims):
    """The transaction failed: give the claimed jobs back to the head of the queue, in order."""
    move_back = queue.connection.register_script(_RELEASE_SCRIPT)
    move_back([claims, queue.key])


def _finish(queue, claims, extras):
    """Claimed jobs are written: forget them (they never entered RQ's registries)."""
    with queue.connection.pipeline() as pipe:
        for job in extras:
            pipe.delete(job.key)
        pipe.delete(claims)
        pipe.execute()


def _report(jobs, answers):
    """Log what was written; points whose metric turned out to have another type are dropped,
    loudly (the door refuses them when it knows the metric already)."""
    written = sum(a.body.get("written", 0) for a in answers if a is not CONFLICT)
    clashes = sum(a.body.get("mismatched", 0) for a in answers if a is not CONFLICT)
    repeats = sum(1 for a in answers if a is CONFLICT)
    if clashes:
        log.error("ingest jobs dropped %d points of metrics stored with the other type", clashes)
    log.info(
        "applied %d ingest jobs: %d points written, %d jobs already applied",
        len(jobs) - repeats,
        written,
        repeats,
    )


_FUNC_NAME = f"{apply_points.__module__}.{apply_points.__qualname__}"
