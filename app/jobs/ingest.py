"""The previous queue design's job (one RQ job per request), kept only so that its jobs still
queued at an upgrade are applied: each appends its points into the buffer, once, and the
drain jobs store them (``app/jobs/drain.py``).
"""

import logging
from datetime import timedelta

from rq import get_current_job

from app.core.timeutil import EPOCH, utcnow
from app.core.writes import Point
from app.db.receipts import TTL, job_receipt
from app.ingest.queue_buffer import buffer_for, encode, lease_ms, start_drainers
from app.jobs import runtime

log = logging.getLogger(__name__)

CLAIMS_SUFFIX = ":claimed:"  # the previous design's per-job lists of jobs it had taken
_RELEASE_SCRIPT = """
while redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT') do end
"""


def apply_points(rows):
    """RQ job of the previous design: ``rows`` ([name, type, value, µs since the epoch]) go
    into the buffer, unless the job was written before the upgrade; points appended."""
    job = get_current_job()
    connection, settings = runtime.redis_connection(), runtime.settings()
    queue = runtime.queue(job.origin, connection)
    release_claims(connection, queue.key, [f"{queue.key}{CLAIMS_SUFFIX}{job.id}"])
    if runtime.database().recorded(job_receipt(job.id), utcnow()) is not None:
        return 0  # its transaction committed under the previous version
    points = [Point(n, t, v, EPOCH + timedelta(microseconds=us)) for n, t, v, us in rows]
    buffer = buffer_for(connection, settings)
    reservation = (f"{buffer.prefix}:legacy:{job.id}", "1", int(TTL.total_seconds()))
    appended = buffer.append(
        encode(points), len(points), settings["QUEUE_MAX_POINTS"], lease_ms(settings), reservation
    )
    if appended.full:
        raise RuntimeError("the queue buffer is full (QUEUE_MAX_POINTS); retried later")
    start_drainers(queue, appended.started)
    return 0 if appended.replayed else len(points)


def release_claims(connection, queue_key, claim_lists=None):
    """Put jobs held on the previous design's claims lists back on their queue (every such
    list of the queue when ``claim_lists`` is None); how many lists there were."""
    if claim_lists is None:
        claim_lists = list(connection.scan_iter(match=f"{queue_key}{CLAIMS_SUFFIX}*"))
    release = connection.register_script(_RELEASE_SCRIPT)
    for claims in claim_lists:
        release([claims, queue_key])
    return len(claim_lists)
