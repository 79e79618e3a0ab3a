"""Flask CLI for the queues and maintenance: ``flask jobs worker|scheduler``, ``flask queue
status|requeue``, ``flask partitions ensure``, ``flask retention run``."""

import json
import threading

import click
from flask import current_app
from rq import SimpleWorker, Worker
from rq.registry import FailedJobRegistry

from app.commands.group import CommandGroup, tenant_option
from app.core.timeutil import isoformat_z, parse_timestamp, utcnow
from app.db import get_store
from app.db.maintenance import Skipped
from app.db.rebuild import NothingToDo, RangeExpired, default_range
from app.infra.redis import connect, get_redis
from app.ingest.queue_buffer import buffer_for, buffer_state
from app.jobs import alerts, drain, runtime, schedule
from app.jobs.ingest import release_claims
from app.jobs.state import QUEUE_SETTINGS, queue_names, queue_state

jobs_cli = CommandGroup("jobs", help="RQ workers and the maintenance scheduler.")
queue_cli = CommandGroup("queue", help="The RQ queues: state and failed jobs.")
partitions_cli = CommandGroup("partitions", help="Daily partitions of the points table (MySQL).")
retention_cli = CommandGroup("retention", help="Removing points older than the retention.")
rollups_cli = CommandGroup("rollups", help="Minute and hour rollups: rebuild and check.")
alerts_cli = CommandGroup("alerts", help="Alerts: evaluation and notices.")
points_cli = CommandGroup("points", help="Points in ClickHouse (POINTS_URL): the copy.")


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
    """Run an RQ worker (with RQ's own scheduler, which runs retries that wait). Ingest jobs
    run in-process (no fork per job); maintenance jobs each run in a forked work horse. An
    ingest worker also watches the queue buffer and starts drain jobs where points wait."""
    names, app_connection = queue_names(current_app.config), _connection()
    # RQ's own client: the worker lengthens its socket timeout for its blocking pops, which a
    # connection the app opened before (with the app's short timeout) would not have.
    connection = connect(current_app.config["REDIS_URL"])
    queues = [runtime.queue(names[role], connection) for role in roles]
    worker_class = SimpleWorker if set(roles) == {"ingest"} else Worker
    worker = worker_class(queues, connection=connection)
    stop = threading.Event()
    if "ingest" in roles and not burst:
        watcher = threading.Thread(
            target=drain.watch, args=(app_connection, dict(current_app.config), stop), daemon=True
        )
        watcher.start()
    elif "ingest" in roles:
        drain.arm(app_connection, current_app.config)  # a burst worker drains what waits now
    try:
        # RQ's own scheduler runs the retries that wait (a failed job's next attempt after its
        # pause is parked in RQ's ScheduledJobRegistry, which rq-scheduler never reads).
        worker.work(burst=burst, logging_level=current_app.config["LOG_LEVEL"], with_scheduler=True)
    finally:
        stop.set()


@jobs_cli.command("scheduler")
@click.option("--register-only", is_flag=True, help="Register the schedule and exit.")
def scheduler_command(register_only):
    """Register the maintenance schedule (idempotent) and run rq-scheduler."""
    settings = current_app.config
    scheduler = schedule.scheduler(_connection(), settings)
    for entry in schedule.register(scheduler, settings):
        click.echo(f"scheduled {entry}", err=True)
    if not register_only:
        scheduler.run()


_NOW = click.option("--now", help="Act as if it were this time (ISO 8601): for trials.")


def _report(run, *args, **kwargs):
    try:
        result = run(*args, **kwargs)
    except Skipped:
        raise click.ClickException("the job is running elsewhere right now; try later") from None
    click.echo(json.dumps(result, indent=2, default=str))


@partitions_cli.command("ensure")
@_NOW
@click.option("--force", is_flag=True, help="Split p_future even if rows landed in it.")
def ensure_command(now, force):
    """Create the daily partitions PARTITIONS_AHEAD_DAYS ahead."""
    _report(get_store(current_app).ensure_partitions, now, force=force)


@retention_cli.command("run")
@_NOW
@click.option("--dry-run", is_flag=True, help="Report what would go; change nothing.")
def retention_command(now, dry_run):
    """Remove points older than METRICS_RETENTION_DAYS + METRICS_RETENTION_GRACE_DAYS."""
    _report(get_store(current_app).trim, now, dry_run=dry_run)


def _moment(text):
    return parse_timestamp(text) if text else None


_RANGE = [
    click.option("--from", "start", help="Start (ISO 8601; default: the raw points' horizon)."),
    click.option("--to", "end", help="End (ISO 8601; default: now)."),
    click.option("--metric", help="Only this metric (the tiers' watermark stays)."),
    tenant_option("The tenant of --metric (default: default)."),
]


def _range_options(command):
    for option in reversed(_RANGE):
        command = option(command)
    return command


@rollups_cli.command("rebuild")
@_range_options
def rebuild_command(start, end, metric, tenant):
    """Recompute rollups from raw points (after an upgrade or a restore)."""
    try:
        result = get_store(current_app).rebuild_rollups(
            _moment(start),
            _moment(end),
            None if metric is None else (tenant.id, metric),
            progress=lambda name: click.echo(f"rebuilt {name}", err=True),
        )
    except (RangeExpired, NothingToDo) as exc:
        raise click.ClickException(f"refusing to rebuild: {exc}") from None
    click.echo(json.dumps(result, default=str))


@rollups_cli.command("check")
@_range_options
def check_command(start, end, metric, tenant):
    """Compare the rollups with the raw points; exit 1 when they differ."""
    key = None if metric is None else (tenant.id, metric)
    found = get_store(current_app).check_rollups(_moment(start), _moment(end), key)
    for name, tier, bucket, stored, expected in found:
        click.echo(f"{name}\t{tier}\t{isoformat_z(bucket)}\tstored={stored}\traw={expected}")
    click.echo(f"{len(found)} difference(s).", err=True)
    if found:
        raise SystemExit(1)


@alerts_cli.command("evaluate")
@_NOW
def evaluate_command(now):
    """Judge every alert of every tenant at the minute boundary and send the notices due."""
    result = alerts.tick(get_store(current_app), current_app.config, _moment(now))
    click.echo(json.dumps(result, indent=2, default=str))


BUFFER_COLUMNS = (
    "points",
    "entries",
    "pending_entries",
    "oldest_seconds",
    "drainers",
    "drained_points",
    "reclaimed_entries",
    "failed_drains",
    "failed_points",
)


@queue_cli.command("status")
def status_command():
    """Waiting, running and failed jobs per queue, and the buffer of queued points."""
    connection = _connection()
    click.echo("queue\tqueued\tstarted\tfailed\toldest_waiting_seconds")
    for name in queue_names(current_app.config).values():
        state = queue_state(connection, name)
        oldest = "-" if state["oldest_seconds"] is None else f"{state['oldest_seconds']:.1f}"
        click.echo(f"{name}\t{state['queued']}\t{state['started']}\t{state['failed']}\t{oldest}")
    state = buffer_state(connection, current_app.config)
    click.echo("\nbuffer\t" + "\t".join(BUFFER_COLUMNS))
    values = ["-" if state[c] is None else str(round(state[c], 1)) for c in BUFFER_COLUMNS]
    click.echo(f"{state['name']}\t" + "\t".join(values))


@queue_cli.command("requeue")
@click.argument("job_ids", nargs=-1)
@click.option("--queue", "role", type=click.Choice(sorted(QUEUE_SETTINGS)), default="ingest")
def requeue_command(job_ids, role):
    """Put failed jobs back on their queue (all of them, or the JOB_IDS given); for the ingest
    queue also the buffer's failed points (and jobs the previous queue design held)."""
    connection = _connection()
    queue = runtime.queue(queue_names(current_app.config)[role], connection)
    registry = FailedJobRegistry(queue=queue)
    wanted = job_ids or registry.get_job_ids()
    for job_id in wanted:
        registry.requeue(job_id)
    click.echo(f"{len(wanted)} job(s) requeued at {isoformat_z(utcnow())}.")
    if role == "ingest" and not job_ids:
        points = _requeue_points(connection, current_app.config)
        lists = release_claims(connection, queue.key)
        click.echo(f"{points} failed point(s) back in the buffer; {lists} old claims list(s).")


def _requeue_points(connection, settings):
    """Move every failed-points record back into the buffer and start drains; points moved."""
    buffer, moved = buffer_for(connection, settings), 0
    while records := buffer.failed_records():
        for record_id, lines in records:
            moved += len(lines) if buffer.requeue(record_id, lines) else 0
    drain.arm(connection, settings)
    return moved


@points_cli.command("copy")
@_range_options
def copy_command(start, end, metric, tenant):
    """Copy the points kept in DATABASE_URL to ClickHouse, a day at a time (run it again to
    finish an interrupted copy; copied days are skipped)."""
    store = get_store(current_app)
    default_start, default_end = default_range(store.settings, utcnow())
    try:
        result = store.copy_points(
            _moment(start) or default_start,
            _moment(end) or default_end,
            None if metric is None else (tenant.id, metric),
            progress=lambda name: click.echo(f"copied {name}", err=True),
        )
    except NothingToDo as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(result, default=str))


def init_app(app):
    """Register the command groups."""
    groups = (jobs_cli, queue_cli, partitions_cli, retention_cli, rollups_cli, alerts_cli,
              points_cli)  # fmt: skip
    for group in groups:
        app.cli.add_command(group)
