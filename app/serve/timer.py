"""The embedded default's scheduler: without Redis there is no rq-scheduler, so each app process
runs a thread that starts a maintenance job when its cron time has come since its last start,
and evaluates the alerts every ALERTS_CRON. The job's named lock and a second look at that
record under the lock keep several processes (gunicorn's workers, or an old and a new one
during a reload) from running it twice.
"""

import logging
import random
import threading

from crontab import CronTab

from app.core.timeutil import utcnow
from app.db.maintenance import PARTITIONS, RETENTION, Skipped
from app.jobs import alerts

log = logging.getLogger(__name__)

CHECK_EVERY_SECONDS = 60
SCHEDULE = {  # job: (its cron setting, the store's operation)
    PARTITIONS: ("MAINTENANCE_PARTITIONS_CRON", "ensure_partitions"),
    RETENTION: ("RETENTION_CRON", "trim"),
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

    def __init__(self, store, interval=CHECK_EVERY_SECONDS):
        self.store, self.settings, self.interval = store, store.settings, interval
        self._stop = threading.Event()
        self._thread = None
        self._alerts_done = None  # when this process last evaluated the alerts

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
            self.run_alerts()

    def run_due(self):
        """Run every job that is due now; their results (None for those not run)."""
        results = {}
        for job, (cron_key, operation) in SCHEDULE.items():
            cron = self.settings[cron_key]

            def due(last_runs, job=job, cron=cron):
                return is_due(job, cron, last_runs, utcnow())

            try:
                results[job] = getattr(self.store, operation)(due=due)
            except Skipped:
                results[job] = None
            except Exception:  # logged and recorded by run_job; try again at its next time
                results[job] = None
        return results

    def run_alerts(self, now=None):
        """Evaluate the alerts and send the notices due when ALERTS_CRON's time has come since
        this process last did (the tick's lock and each alert's last boundary keep several
        processes from judging one alert twice); the tick's result, or None."""
        now = now or utcnow()
        last = self._alerts_done
        if last is not None and next_run(self.settings["ALERTS_CRON"], last) > now:
            return None
        self._alerts_done = now
        try:
            return alerts.tick(self.store, self.settings, now)
        except Exception:
            log.warning("alerts: evaluation failed; tried again at the next tick", exc_info=True)
            return None
