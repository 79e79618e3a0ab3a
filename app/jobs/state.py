"""What the RQ queues hold, read from Redis: for /ready, /metrics and ``flask queue status``."""

from rq.registry import FailedJobRegistry, StartedJobRegistry

from app.core.timeutil import utcnow
from app.jobs import runtime

QUEUE_SETTINGS = {"ingest": "RQ_INGEST_QUEUE", "maintenance": "RQ_MAINTENANCE_QUEUE"}


def queue_names(settings):
    """{role: queue name} from the settings."""
    return {role: settings[key] for role, key in QUEUE_SETTINGS.items() if key in settings}


def _oldest_age(queue):
    job_ids = queue.get_job_ids(0, 0)
    job = queue.fetch_job(job_ids[0]) if job_ids else None
    if job is None or job.enqueued_at is None:
        return None
    return (utcnow() - job.enqueued_at.replace(tzinfo=None)).total_seconds()


def queue_state(connection, name):
    """Waiting, running and failed jobs of a queue, and how long the oldest has waited."""
    queue = runtime.queue(name, connection)
    return {
        "queued": queue.count,
        "started": StartedJobRegistry(queue=queue).count,
        "failed": FailedJobRegistry(queue=queue).count,
        "oldest_seconds": _oldest_age(queue),
    }
