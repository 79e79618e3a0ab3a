"""Maintenance on RQ: the entry points rq-scheduler's entries lead to (module-level functions
over plain arguments, each running the store's own maintenance in the worker process), and how
the app hands a large deletion to the background."""

import threading

from rq import Retry

from app.config import maintenance_runner
from app.db.maintenance import PARTITIONS, RETENTION, Skipped
from app.infra.redis import get_redis
from app.jobs import runtime

JOB_TIMEOUT_SECONDS = 6 * 3600


def retry_policy(settings):
    """RQ's retries of a failed maintenance job: after each of MAINTENANCE_RETRY_SECONDS (run
    by the workers' own RQ scheduler), then the failed registry."""
    pauses = list(settings["MAINTENANCE_RETRY_SECONDS"])
    return Retry(max=len(pauses), interval=pauses)


def maintain_partitions(now=None):
    """RQ job: keep partitions ahead."""
    return _skippable(lambda: runtime.database().ensure_partitions(now))


def apply_retention(now=None, dry_run=False):
    """RQ job: apply retention."""
    return _skippable(lambda: runtime.database().trim(now, dry_run))


def purge_metric(metric_id):
    """RQ job: finish removing a deleted metric."""
    return runtime.database().purge_metric(metric_id)


def _skippable(run):
    try:
        return run()
    except Skipped:
        return {"skipped": "already running elsewhere"}


JOBS = {PARTITIONS: maintain_partitions, RETENTION: apply_retention}


def trigger(job):
    """RQ job the scheduler enqueues on its cron: a fresh ``job`` with its own retries (a cron
    entry is one long-lived RQ job, whose retries would be spent once and for all)."""
    settings = runtime.settings()
    queue = runtime.queue(settings["RQ_MAINTENANCE_QUEUE"], runtime.redis_connection())
    queued = queue.enqueue(
        JOBS[job], retry=retry_policy(settings), job_timeout=JOB_TIMEOUT_SECONDS, result_ttl=86400
    )
    return queued.id


def background_purger(app, store):
    """How this app finishes a large deletion: an RQ job on the maintenance queue when RQ
    runs maintenance, else a thread of this process (the next retention run finishes whatever
    a stopped process left)."""
    config = app.config
    if maintenance_runner(config) == "rq":
        queue = runtime.queue(config["RQ_MAINTENANCE_QUEUE"], get_redis(app))
        retry = retry_policy(config)
        return lambda metric_id: queue.enqueue(purge_metric, metric_id, retry=retry)

    def in_a_thread(metric_id):
        threading.Thread(target=store.purge_metric, args=(metric_id,), daemon=True).start()

    return in_a_thread
