"""Flask CLI for the queues: ``flask jobs worker`` and ``flask queue status|requeue``."""

import click
from flask import current_app
from flask.cli import AppGroup
from rq import SimpleWorker, Worker
from rq.registry import FailedJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer

from app.jobs import runtime
from app.redis import get_redis
from app.timeutil import isoformat_z, utcnow

jobs_cli = AppGroup("jobs", help="RQ workers.")
queue_cli = AppGroup("queue", help="The RQ queues: state and failed jobs.")

QUEUE_SETTINGS = {"ingest": "RQ_INGEST_QUEUE", "maintenance": "RQ_MAINTENANCE_QUEUE"}


def queue_names():
    """{role: queue name} from the settings."""
    return {
        role: current_app.config[key]
        for role, key in QUEUE_SETTINGS.items()
        if key in current_app.config
    }


def _connection():
    connection = get_redis(current_app)
    if connection is None:
        raise click.ClickException("REDIS_URL is not set: the queues live in Redis")
    return connection


@jobs_cli.command("worker")
@click.option(
    "--queue",
    "roles",
    multiple=True,
    type=click.Choice(sorted(QUEUE_SETTINGS)),
    default=("ingest",),
    show_default=True,
    help="Which queue(s) to work on; repeat for several.",
)
@click.option("--burst", is_flag=True, help="Stop once the queues are empty.")
def worker_command(roles, burst):
    """Run an RQ worker. Ingestion runs in-process (no fork per job: a job is a few ms of
    work); maintenance jobs each run in a forked work horse."""
    names = queue_names()
    connection = _connection()
    queues = [runtime.queue(names[role], connection) for role in roles]
    worker_class = SimpleWorker if set(roles) == {"ingest"} else Worker
    worker = worker_class(queues, connection=connection, serializer=JSONSerializer)
    worker.work(burst=burst, logging_level=current_app.config["LOG_LEVEL"])


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


@queue_cli.command("status")
def status_command():
    """Waiting, running and failed jobs per queue."""
    connection = _connection()
    click.echo("queue\tqueued\tstarted\tfailed\toldest_waiting_seconds")
    for name in queue_names().values():
        state = queue_state(connection, name)
        oldest = "-" if state["oldest_seconds"] is None else f"{state['oldest_seconds']:.1f}"
        click.echo(f"{name}\t{state['queued']}\t{state['started']}\t{state['failed']}\t{oldest}")


@queue_cli.command("requeue")
@click.argument("job_ids", nargs=-1)
@click.option("--queue", "role", type=click.Choice(sorted(QUEUE_SETTINGS)), default="ingest")
def requeue_command(job_ids, role):
    """Put failed jobs back on their queue (all of them, or the JOB_IDS given)."""
    registry = FailedJobRegistry(queue=runtime.queue(queue_names()[role], _connection()))
    wanted = job_ids or registry.get_job_ids()
    for job_id in wanted:
        registry.requeue(job_id)
    click.echo(f"{len(wanted)} job(s) requeued at {isoformat_z(utcnow())}.")


def init_app(app):
    """Register the command groups."""
    app.cli.add_command(jobs_cli)
    app.cli.add_command(queue_cli)
