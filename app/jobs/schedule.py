"""The maintenance schedule on rq-scheduler: one cron entry per job, under a fixed id, so
registering again — a restart, or two schedulers starting at once — replaces the entries
instead of adding to them. Each maintenance entry enqueues ``maintenance.trigger``, which
queues a fresh job with its own retries on the maintenance queue; in queue mode one more
entry starts drain jobs where points wait (``drain.arm_drainers``)."""

import logging
import warnings

from rq_scheduler import Scheduler

from app.jobs import alerts, drain, maintenance

log = logging.getLogger(__name__)

ID_PREFIX = "glowing-fiesta.maintenance."
REGISTER_LOCK = "glowing-fiesta:schedule:register"
CRON_SETTINGS = {
    maintenance.PARTITIONS: "MAINTENANCE_PARTITIONS_CRON",
    maintenance.RETENTION: "RETENTION_CRON",
}


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


DRAINERS_ENTRY = f"{ID_PREFIX}queue-drainers"
ALERTS_ENTRY = f"{ID_PREFIX}alerts"  # every ALERTS_CRON: evaluate alerts, send notices
DRAINERS_CRON = "* * * * *"  # the workers' own watch looks every second; this is a backstop


def entries(settings):
    """{entry id: (cron expression, job function, its args, queue)} the settings ask for: the
    maintenance jobs, the alerts' evaluation, and in queue mode a minutely start of drain jobs
    where points wait."""
    wanted = {
        f"{ID_PREFIX}{job}": (settings[key], maintenance.trigger, [job],
                              settings["RQ_MAINTENANCE_QUEUE"])
        for job, key in CRON_SETTINGS.items()
    }  # fmt: skip
    wanted[ALERTS_ENTRY] = (settings["ALERTS_CRON"], alerts.evaluate, [],
                            settings["RQ_MAINTENANCE_QUEUE"])  # fmt: skip
    if settings["INGEST_MODE"] == "queue":
        ingest = settings["RQ_INGEST_QUEUE"]
        wanted[DRAINERS_ENTRY] = (DRAINERS_CRON, drain.arm_drainers, [], ingest)
    return wanted


def register(scheduler_, settings):
    """Make the scheduled entries exactly those of ``entries``; their ids."""
    wanted = entries(settings)
    with scheduler_.connection.lock(REGISTER_LOCK, timeout=60, blocking_timeout=60):
        for job_id, (cron, func, args, queue_name) in wanted.items():
            scheduler_.cron(
                cron,
                func=func,
                args=args,
                id=job_id,
                queue_name=queue_name,
                result_ttl=86400,
                use_local_timezone=False,
            )
        for entry in scheduler_.get_jobs():
            if entry.id.startswith(ID_PREFIX) and entry.id not in wanted:
                scheduler_.cancel(entry)
    log.info("schedule registered: %s", {i: c for i, (c, *_) in wanted.items()})
    return sorted(wanted)
