"""Flask CLI: ``flask db migrate`` and ``flask keys create|list|revoke|rotate``."""

import click
from flask import current_app

from app.api import auth
from app.commands.group import CommandGroup
from app.core.stathat import BadStatName, generate_stat_key, metric_name
from app.core.timeutil import isoformat_z, utcnow
from app.db import get_store

db_cli = CommandGroup("db", help="Database schema.")
keys_cli = CommandGroup("keys", help="API keys.")
metrics_cli = CommandGroup("metrics", help="Metrics.")


def _store():
    """The app's Store."""
    return get_store(current_app)


@db_cli.command("migrate")
def migrate_command():
    """Apply pending sql/ migrations and create upcoming partitions (safe to re-run)."""
    done = _store().migrate()
    click.echo(f"Schema up to date ({len(done)} migration(s) applied).", err=True)


def _announce_key(raw, key_id, name):
    click.echo(f"API key {key_id} ({auth.display_prefix(raw)}) for {name!r}.", err=True)
    click.echo("It is shown only now; store it safely:", err=True)
    click.echo(raw)  # alone, the last line of stdout


_RATE = click.option(
    "--rate",
    type=click.IntRange(min=1),
    default=None,
    help="Requests per minute (default: METRICS_RATE_LIMIT_DEFAULT).",
)


def _scope_option(default):
    return click.option(
        "--scope",
        type=click.Choice(sorted(auth.SCOPE_CHOICES)),
        default=default,
        help="read (queries, listings), write (ingest, deletion), read,write, or admin.",
    )


@keys_cli.command("create")
@click.option("--name", required=True, help="Who the key is for.")
@_RATE
@_scope_option(auth.DEFAULT_SCOPES)
def create_command(name, rate, scope):
    """Create a key and print it once."""
    scopes = auth.SCOPE_CHOICES[scope]
    raw, key_id = auth.create_key(_store(), name, rate, scopes)
    _announce_key(raw, key_id, name)


@keys_cli.command("update")
@click.argument("ident")
@_RATE
@_scope_option(None)
def update_command(ident, rate, scope):
    """Change a key's limit or scope; every server applies it within 5 s."""
    values = {}
    if rate is not None:
        values["rate_limit"] = rate
    if scope is not None:
        values["scopes"] = auth.SCOPE_CHOICES[scope]
    if not values:
        raise click.UsageError("nothing to change: give --rate and/or --scope")
    row = _find_or_fail(ident)
    _store().change_key(row.id, values)
    changes = ", ".join(f"{name} {value}" for name, value in values.items())
    click.echo(f"API key {row.id} ({row.prefix}) updated: {changes}.")


@keys_cli.command("list")
def list_command():
    """List keys (never the keys themselves)."""
    rows = _store().list_keys()
    default = current_app.config["METRICS_RATE_LIMIT_DEFAULT"]
    click.echo("id\tprefix\tname\tscopes\trate_per_minute\tcreated_at\tlast_used_at\tstatus")
    for row in rows:
        used = isoformat_z(row.last_used_at) if row.last_used_at else "-"
        status = f"revoked {isoformat_z(row.revoked_at)}" if row.revoked_at else "active"
        rate = row.rate_limit or f"{default} (default)"
        fields = [row.id, row.prefix, row.name, row.scopes, rate]
        fields += [isoformat_z(row.created_at), used, status]
        click.echo("\t".join(map(str, fields)))


def _find_or_fail(ident):
    row = _store().find_key(ident)
    if row is None:
        raise click.ClickException(f"No API key with id or prefix {ident!r}")
    return row


@keys_cli.command("revoke")
@click.argument("ident")
def revoke_command(ident):
    """Revoke a key by id or prefix; every server refuses it within 5 s."""
    row = _find_or_fail(ident)
    changed = _store().revoke_key(row.id, utcnow())
    click.echo(
        f"API key {row.id} ({row.prefix}) " + ("revoked." if changed else "was already revoked.")
    )


@keys_cli.command("rotate")
@click.argument("ident")
def rotate_command(ident):
    """Replace a key: revoke it and print a new one with the same name, limit and scopes."""
    row = _find_or_fail(ident)
    if row.revoked_at is not None:
        raise click.ClickException(f"API key {row.id} is revoked; create a new one instead")
    raw, key_id = auth.replace_key(_store(), row)
    click.echo(f"API key {row.id} ({row.prefix}) revoked.", err=True)
    _announce_key(raw, key_id, row.name)


@metrics_cli.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete_metric_command(name, yes):
    """Delete a metric and all its points (the name is free again at once)."""
    if not yes:
        click.confirm(f"Delete metric {name!r} and all its points?", abort=True)
    outcome = _store().delete_metric(name, _store().purge_metric)  # the CLI waits for it all
    if outcome is None:
        raise click.ClickException(f"No metric named {name!r}")
    metric, deleted, _ = outcome
    click.echo(f"Metric {name!r} ({metric.type}) deleted with {deleted} point(s).")


@metrics_cli.command("stat-key")
@click.argument("stat")
def stat_key_command(stat):
    """Create a StatHat stat key (the `key` of /c and /v) for the metric STAT maps to."""
    try:
        metric = metric_name(stat)
    except BadStatName as exc:
        raise click.ClickException(str(exc)) from None
    raw = generate_stat_key()
    _store().create_stat_key(auth.hash_key(raw), auth.display_prefix(raw), metric, utcnow())
    click.echo(f"Stat key for metric {metric!r}; it is shown only now:", err=True)
    click.echo(raw)


def init_app(app):
    """Register the command groups."""
    app.cli.add_command(db_cli)
    app.cli.add_command(keys_cli)
    app.cli.add_command(metrics_cli)
