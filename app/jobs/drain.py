"""RQ jobs of queue mode: drain jobs move the buffer's points (``app/queue_buffer.py``) into
the database, at most QUEUE_DRAINERS at once.

Each drain job holds one drain slot (a lease in Redis) and loops: take a batch — a stalled
consumer's whole batch first, else up to QUEUE_DRAIN_BATCH unread points — store it in one
transaction through ``write_requests`` (the synchronous writer's: one executemany, rollups,
receipts) with a receipt named by the batch's token, then acknowledge it. A batch is fixed
when first read and reclaimed whole, so a drain killed at any instant leaves either no
receipt (the batch is written again) or its receipt (the batch is only acknowledged).

Drains start when an append finds a slot free, continue while there is work (handing the slot
to a fresh job every DRAIN_JOB_SECONDS, lingering DRAIN_LINGER_SECONDS when there is none),
and are started by every ingest worker's watch every TICK_SECONDS and by the scheduler's entry
when work waits and a slot is free — which is how a dead drainer's batch is picked up once
its lease and idle time pass QUEUE_CLAIM_IDLE_SECONDS.
"""

import logging
import time
import uuid

from redis import RedisError

from app.core.timeutil import utcnow
from app.core.writes import CONFLICT, Answer, WriteRequest
from app.db.errors import is_unavailable_error
from app.db.receipts import batch_receipt
from app.ingest.queue_buffer import IDLE, Buffer, buffer_for, decode, lease_ms, start_drainers
from app.jobs import runtime

log = logging.getLogger(__name__)

DRAIN_JOB_SECONDS = 10
# A drain with nothing to do keeps its slot this long, looking every LINGER_POLL_SECONDS, so a
# steady trickle of requests is drained by one job rather than starting one each.
DRAIN_LINGER_SECONDS = 1.0
LINGER_POLL_SECONDS = 0.05
TICK_SECONDS = 1.0
# A batch whose drain raised this often (not for an unreachable database) is given up: its
# points go to the failed-points record instead of blocking a slot for ever.
MAX_DELIVERIES = 5
TYPE_MISMATCH = "METRIC_TYPE_MISMATCH"
METRIC_LIMIT = "METRIC_LIMIT_EXCEEDED"
SERIES_LIMIT = "SERIES_LIMIT_EXCEEDED"
DRAIN_FAILED = "DRAIN_FAILED"


def _buffer(queue_name, slot):
    settings = runtime.settings()
    drainers = max(settings["QUEUE_DRAINERS"], slot + 1)
    return runtime.per_process(
        f"buffer {queue_name} {drainers}",
        lambda: Buffer(runtime.redis_connection(), queue_name, drainers),
    )


def drain(queue_name, slot, job_id):
    """RQ job: drain the buffer of ``queue_name`` in slot ``slot`` as ``job_id`` (also its
    consumer name) until it has been empty for DRAIN_LINGER_SECONDS, then release the slot
    (or, busy after DRAIN_JOB_SECONDS, hand it to a fresh job); batches written."""
    settings = runtime.settings()
    buffer, lease = _buffer(queue_name, slot), lease_ms(settings)
    size = settings["QUEUE_DRAIN_BATCH"]
    deadline, quiet_since, done = time.monotonic() + DRAIN_JOB_SECONDS, None, 0
    while True:
        now = time.monotonic()
        if quiet_since is None and now > deadline:
            _hand_over(buffer, queue_name, slot, job_id, lease)
            return done
        release = quiet_since is not None and now - quiet_since >= DRAIN_LINGER_SECONDS
        batch = buffer.next_batch(slot, job_id, lease, size, lease, release)
        if batch is IDLE:
            quiet_since = quiet_since or now
            time.sleep(LINGER_POLL_SECONDS)
        elif batch is None or not _apply(buffer, job_id, batch, settings):
            return done
        else:
            quiet_since, done = None, done + 1


def _apply(buffer, consumer, batch, settings):
    """Store one batch and acknowledge it; False when it failed (it stays pending)."""
    try:
        written, refused = _store(buffer.name, batch, settings)
    except Exception as exc:  # whatever it was, the batch stays until it is applied or kept
        return _failed(buffer, consumer, batch, exc)
    lines = batch.payload.split("\n") if refused else []
    kept = [f"{code}\t{lines[position]}" for position, code in refused]
    if kept:
        log.error("queue batch %s: %d points refused, kept as failed", batch.token, len(kept))
    if buffer.ack(consumer, batch, written, kept) == 0:
        log.warning("queue batch %s was taken over by another drainer", batch.token)
    return True


def _store(queue_name, batch, settings):
    """The batch's points in one transaction, with its receipt: (points written, [(position,
    code)] refused) — as first applied, when the receipt shows it was already."""
    request = WriteRequest(
        decode(batch.payload), _outcome, batch_receipt(f"{queue_name}:{batch.token}")
    )
    [answer] = runtime.database().write_requests([request], utcnow())
    if answer is CONFLICT:
        raise RuntimeError(f"queue batch {batch.token}: its receipt holds no outcome")
    return answer.body["written"], [tuple(item) for item in answer.body["refused"]]


def _outcome(result):
    """A batch's outcome, kept as its receipt's answer."""
    refused = [[position, TYPE_MISMATCH] for position, _ in result.mismatched]
    refused += [[position, METRIC_LIMIT] for position in result.limited]
    refused += [[position, SERIES_LIMIT] for position in result.series_limited]
    return Answer(200, {"written": len(result.written), "refused": refused})


def _failed(buffer, consumer, batch, exc):
    """A batch that raised stays pending and is reclaimed after QUEUE_CLAIM_IDLE_SECONDS; one
    that raised MAX_DELIVERIES times (the database reachable) goes to the failed points."""
    buffer.count_failed_drain()
    if is_unavailable_error(exc) or batch.deliveries < MAX_DELIVERIES:
        log.warning(
            "queue batch %s (delivery %d) failed, retried later: %s: %s",
            batch.token, batch.deliveries, type(exc).__name__, exc,
        )  # fmt: skip
        return False
    log.error("queue batch %s failed %d times, kept as failed points", batch.token,
              batch.deliveries, exc_info=exc)  # fmt: skip
    kept = [f"{DRAIN_FAILED}\t{line}" for line in batch.payload.split("\n")]
    buffer.ack(consumer, batch, 0, kept)
    return True


def _hand_over(buffer, queue_name, slot, job_id, lease):
    """Pass the slot to a fresh job (so one job never runs for ever)."""
    successor = f"gf-drain.{queue_name}.{uuid.uuid4().hex}.{slot}"
    if buffer.hand_over(slot, job_id, successor, lease):
        start_drainers(runtime.queue(queue_name, buffer.connection), [(slot, successor)])


def arm(connection, settings):
    """Start drain jobs for the free slots if points wait; the slots started."""
    lease = lease_ms(settings)
    started = buffer_for(connection, settings).arm(lease, lease)
    start_drainers(runtime.queue(settings["RQ_INGEST_QUEUE"], connection), started)
    return [slot for slot, _ in started]


def arm_drainers():
    """RQ job (the scheduler's safety net): start drain jobs where points wait."""
    return arm(runtime.redis_connection(), runtime.settings())


def watch(connection, settings, stop, interval=TICK_SECONDS):
    """Now and every ``interval`` until ``stop`` is set, start drain jobs where points wait:
    an ingest worker's thread, so a dead drainer's batch is taken up without a request or a
    scheduler."""
    while True:
        try:
            arm(connection, settings)
        except RedisError as exc:
            log.warning("queue watch: Redis unavailable: %s", exc)
        if stop.wait(interval):
            return
