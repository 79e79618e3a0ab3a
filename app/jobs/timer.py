"""The embedded default's scheduler: without Redis there is no rq-scheduler, so each app
process runs a thread that starts a maintenance job when its cron time has come since its
last start. The job's named lock and a second look at that record under the lock keep several
processes (gunicorn's workers, or an old and a new one during a reload) from running it twice.
"""

import logging
import random
import threading

from crontab import CronTab

from app.jobs import maintenance
from app.timeutil import utcnow

log = logging.getLogger(__name__)

CHECK_EVERY_SECONDS = 60
SCHEDULE = {
    maintenance.PARTITIONS: ("PARTITIONS_CRON", maintenance.run_partitions),
    maintenance.RETENTION: ("RETENTION_CRON", maintenance.run_retention),
}


def next_run(cron, after):
    """The first cron time strictly after ``after`` (naive UTC)."""
    return (
        CronTab(cron).next(now=after, default_utc=True, return_datetime=True).replace(tzinfo=None)
    )


def is_due(job, cron, last_runs, now):
    """A job never started is due; else once its next cron time after the last start passed."""
    started = (last_runs.get(job) or {}).get("last_started_at")
    return started is None or next_run(cron, started) <= now


class MaintenanceTimer:
    """The thread of one process; ``stop`` ends it."""

    def __init__(self, db, settings, interval=CHECK_EVERY_SECONDS):
        self.db, self.settings, self.interval = db, settings, interval
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        """Start checking (a little jitter keeps workers from checking in step)."""
        self._thread = threading.Thread(target=self._loop, name="maintenance-timer", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout=5):
        """Stop after the job in hand, if any."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self):
        while not self._stop.wait(self.interval * random.uniform(0.2, 1.0)):
            self.run_due()

    def run_due(self):
        """Run every job that is due now; their results (None for those not run)."""
        results = {}
        for job, (cron_key, run) in SCHEDULE.items():
            cron = self.settings[cron_key]

            def due(last_runs, job=job, cron=cron):
                return is_due(job, cron, last_runs, utcnow())

            try:
                results[job] = run(self.db, self.settings, due=due)
            except maintenance.Skipped:
                results[job] = None
            except Exception:  # logged and recorded by run_job; try again at its next time
                results[job] = None
        return results
