"""gunicorn settings, read from the environment through app.config (see README).

The choices:
- Worker class: gthread (threads in each process; requests mostly wait on the database and
  Redis, and threads of one process share its group-commit writer), subclassed (app/server.py)
  to read each request whole in its poller before a thread serves it (a slow client holds no
  thread; REQUEST_READ_TIMEOUT bounds it), to linger on closing so a client still sending a
  refused body reads its 413, and to answer gunicorn's own errors in the JSON envelope.
- Workers × threads: WEB_CONCURRENCY × THREADS. The embedded default (SQLite, no Redis) runs
  one process — one SQLite writer, exact in-memory rate limits — with 8 threads; with MySQL
  and Redis, 2 processes a core, 8 threads each (each process writes its own group commits,
  so two a core keep the database busy while one is parsing).
- timeout 60 s: a worker silent that long (a hung C call) is killed and replaced.
  graceful_timeout 30 s: a SIGTERM'd worker stops accepting, finishes its requests, and its
  writer commits what waits, within that. keepalive 5 s: a little over the idle timeout of
  nginx's upstream connections (4 s in deploy/nginx.conf), so nginx closes an idle
  connection before gunicorn does and never sends a request on one gunicorn just closed.
- max_requests: off unless WORKER_MAX_REQUESTS is set (then ± 10 % jitter, so the workers do not
  all restart at once). A recycled worker closes its keep-alive connections, and a request a
  client has just sent on one is lost (behind nginx, a 502 for a POST); the processes' memory
  stays flat under load, so there is no leak to bound.
- Logs: gunicorn's own lines go through the app's formatter (JSON by default, LOG_FORMAT),
  and the app writes one access record per request, so gunicorn's access log stays off.
"""

import logging
import sys

from app import shutdown
from app.config import ensure_multiprocess_dir, maintenance_runner
from app.db import get_store
from app.infra.logs import gunicorn_logconfig
from app.serve.startup import check_server
from app.serve.timer import MaintenanceTimer

# A bad setting, a port in use or a Redis unfit for queue mode stop here, in two lines.
_settings = check_server()
# Before any worker exists: every worker writes its Prometheus figures there (app/telemetry.py);
# prometheus_client reads that at import, so it is imported only now (never in a signal handler).
_metrics_dir = ensure_multiprocess_dir()
from prometheus_client import multiprocess  # noqa: E402

bind = _settings["bind"]
workers = _settings["workers"]
threads = _settings["threads"]
worker_class = "app.serve.server.BufferingWorker"
limit_request_line = 8190  # gunicorn's maximum: room for ~30 full-length names in one query
wsgi_app = "app:create_app()"
graceful_timeout = 30
timeout = 60
keepalive = 5
max_requests = _settings["max_requests"]
max_requests_jitter = _settings["max_requests_jitter"]
loglevel = _settings["loglevel"]
logconfig_dict = gunicorn_logconfig(_settings["loglevel"], _settings["logformat"])
accesslog = None


def when_ready(server):
    """Say once where the service listens, where the chart page is and what to do next: in
    plain words on a terminal, as a log record otherwise."""
    base = f"http://{bind}"
    lines = [
        f"Glowing Fiesta is serving on {base} (the chart page: {base}/).",
        'Next, in another shell: KEY=$(make api-key NAME="My App" | tail -n 1)',
    ]
    if sys.stderr.isatty():
        print("\n".join(lines), file=sys.stderr, flush=True)
    else:
        server.log.info(" ".join(lines))


def worker_int(worker):
    """Log that a worker was interrupted."""
    logging.getLogger("gunicorn.error").info("worker %s interrupted", worker.pid)


def post_worker_init(worker):
    """Forget any pooled connection inherited from the master (it matters with --preload), and
    start the maintenance timer where no rq-scheduler runs maintenance (the embedded default)."""
    app = worker.wsgi
    get_store(app).dispose(close=False)
    if maintenance_runner(app.config) == "timer":
        app.extensions["glowing_fiesta.timer"] = MaintenanceTimer(get_store(app)).start()


def worker_exit(server, worker):
    """Commit what the worker's writer holds and close its database connections."""
    app = getattr(worker, "wsgi", None)
    if app is not None:
        timer = app.extensions.get("glowing_fiesta.timer")
        if timer is not None:
            timer.stop()
        shutdown(app)


def child_exit(server, worker):
    """Forget a dead worker's live gauges (its counters stay in the sums)."""
    multiprocess.mark_process_dead(worker.pid, _metrics_dir)
