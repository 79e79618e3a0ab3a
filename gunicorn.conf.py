"""gunicorn settings, read from the environment through app.config (see README)."""

import logging

from app.config import ensure_multiprocess_dir, maintenance_runner, server_settings
from app.db import get_db
from app.jobs.timer import MaintenanceTimer

_settings = server_settings()
# Before any worker exists: every worker writes its Prometheus figures there (app/telemetry.py);
# prometheus_client reads that at import, so it is imported only now (never in a signal handler).
_metrics_dir = ensure_multiprocess_dir()
from prometheus_client import multiprocess  # noqa: E402

bind = _settings["bind"]
workers = _settings["workers"]
threads = _settings["threads"]
# gthread, answering gunicorn's own errors (oversized request line, headers) in JSON.
worker_class = "app.server.JsonErrorWorker"
limit_request_line = 8190  # gunicorn's maximum: room for ~30 full-length names in one query
loglevel = _settings["loglevel"]
wsgi_app = "app:create_app()"
# A SIGTERM'd worker gets this long to finish the requests (and writes) it has in flight.
graceful_timeout = 30
timeout = 60
keepalive = 5
accesslog = None


def worker_int(worker):
    """Log that a worker was interrupted."""
    logging.getLogger("gunicorn.error").info("worker %s interrupted", worker.pid)


def post_worker_init(worker):
    """Forget any pooled connection inherited from the master (it matters with --preload), and
    start the maintenance timer where no rq-scheduler runs maintenance (the embedded default)."""
    app = worker.wsgi
    get_db(app).dispose(close=False)
    if maintenance_runner(app.config) == "timer":
        app.extensions["glowing_fiesta.timer"] = MaintenanceTimer(get_db(app), app.config).start()


def worker_exit(server, worker):
    """Commit what the worker's writer holds and close its database connections."""
    app = getattr(worker, "wsgi", None)
    if app is not None:
        timer = app.extensions.get("glowing_fiesta.timer")
        if timer is not None:
            timer.stop()
        get_db(app).dispose()


def child_exit(server, worker):
    """Forget a dead worker's live gauges (its counters stay in the sums)."""
    multiprocess.mark_process_dead(worker.pid, _metrics_dir)
