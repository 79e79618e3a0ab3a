"""The maintenance schedule on rq-scheduler: one cron entry per job, under a fixed id, so
registering again — a restart, or two schedulers starting at once — replaces the entries
instead of adding to them. Each entry enqueues ``maintenance.trigger``, which queues a fresh
job with its own retries on the maintenance queue."""

import logging
import warnings

from rq_scheduler import Scheduler

from app.jobs import maintenance

log = logging.getLogger(__name__)

ID_PREFIX = "glowing-fiesta.maintenance."
REGISTER_LOCK = "glowing-fiesta:schedule:register"
CRON_SETTINGS = {maintenance.PARTITIONS: "PARTITIONS_CRON", maintenance.RETENTION: "RETENTION_CRON"}


def scheduler(connection, settings, interval=30):
    """An rq-scheduler moving due entries onto the maintenance queue."""
    # rq-scheduler 0.14 asks crontab for the next time from a naive local datetime and turns
    # the answer into UTC itself: crontab's "old" behaviour, which it warns will change. That
    # warning is about crontab's defaults, not our schedule (entries are cron in UTC).
    warnings.filterwarnings(
        "ignore", message="Version 0.22.0", category=FutureWarning, module="rq_scheduler"
    )
    return Scheduler(
        queue_name=settings["RQ_MAINTENANCE_QUEUE"], connection=connection, interval=interval
    )


def entries(settings):
    """{entry id: (cron expression, job name)} the settings ask for."""
    return {f"{ID_PREFIX}{job}": (settings[key], job) for job, key in CRON_SETTINGS.items()}


def register(scheduler_, settings):
    """Make the scheduled entries exactly those of ``entries``; their ids."""
    wanted = entries(settings)
    with scheduler_.connection.lock(REGISTER_LOCK, timeout=60, blocking_timeout=60):
        for job_id, (cron, job) in wanted.items():
            scheduler_.cron(
                cron,
                func=maintenance.trigger,
                args=[job],
                id=job_id,
                queue_name=settings["RQ_MAINTENANCE_QUEUE"],
                result_ttl=86400,
                use_local_timezone=False,
            )
        for entry in scheduler_.get_jobs():
            if entry.id.startswith(ID_PREFIX) and entry.id not in wanted:
                scheduler_.cancel(entry)
    log.info("maintenance schedule registered: %s", {i: c for i, (c, _) in wanted.items()})
    return sorted(wanted)
