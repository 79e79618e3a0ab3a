"""Flask CLI: ``flask db migrate``, ``flask tenants create|list|update``, ``flask keys
create|list|update|revoke|rotate`` and ``flask metrics delete|stat-key``."""

import click
from flask import current_app

from app.api import auth
from app.commands.group import CommandGroup, tenant_option
from app.core.stathat import BadStatName, generate_stat_key, metric_name
from app.core.tenants import TENANT_NAME_RULE, valid_name
from app.core.timeutil import isoformat_z, utcnow
from app.db import get_store

db_cli = CommandGroup("db", help="Database schema.")
tenants_cli = CommandGroup("tenants", help="Tenants and their limits.")
keys_cli = CommandGroup("keys", help="API keys.")
metrics_cli = CommandGroup("metrics", help="Metrics.")


def _store():
    """The app's Store."""
    return get_store(current_app)


def _limit_options(command):
    for name, what in (
        ("--points-per-minute", "Points a minute, all its keys together (0: unlimited; "
         "default TENANT_POINTS_PER_MINUTE)."),
        ("--max-series", "Series of all its metrics (default TENANT_MAX_SERIES)."),
        ("--max-metrics", "Metrics (default METRICS_MAX_METRICS)."),
    ):  # fmt: skip
        command = click.option(name, type=click.IntRange(min=0), default=None, help=what)(command)
    return command


def _limits(max_metrics, max_series, points_per_minute):
    given = {
        "max_metrics": max_metrics,
        "max_series": max_series,
        "points_per_minute": points_per_minute,
    }
    return {column: value for column, value in given.items() if value is not None}


def _describe_limits(tenant):
    own = tenant.limits(current_app.config)
    points = own["points_per_minute"] or "unlimited"
    return (
        f"max_metrics {own['max_metrics']}, max_series {own['max_series']}, "
        f"points_per_minute {points}"
    )


@tenants_cli.command("create")
@click.argument("name")
@_limit_options
def tenant_create_command(name, max_metrics, max_series, points_per_minute):
    """Create a tenant (its limits default to the settings')."""
    if not valid_name(name):
        raise click.BadParameter(f"{name!r} {TENANT_NAME_RULE}", param_hint="NAME")
    limits = _limits(max_metrics, max_series, points_per_minute)
    tenant = _store().create_tenant(name, utcnow(), limits)
    if tenant is None:
        raise click.ClickException(f"A tenant named {name!r} exists already")
    click.echo(f"Tenant {name!r} created: {_describe_limits(tenant)}.")


@tenants_cli.command("update")
@click.argument("name")
@_limit_options
def tenant_update_command(name, max_metrics, max_series, points_per_minute):
    """Change a tenant's limits; every server applies them within 5 s."""
    limits = _limits(max_metrics, max_series, points_per_minute)
    if not limits:
        raise click.UsageError(
            "nothing to change: give --max-metrics, --max-series and/or --points-per-minute"
        )
    tenant = _store().change_tenant(name, limits)
    if tenant is None:
        raise click.ClickException(f"No tenant named {name!r}")
    click.echo(f"Tenant {name!r} updated: {_describe_limits(tenant)}.")


@tenants_cli.command("list")
def tenant_list_command():
    """List tenants with their limits and what they use."""
    click.echo(
        "name	metrics	max_metrics	series	max_series	points_per_minute	keys"
    )
    for usage in _store().tenant_usage():
        own = usage.tenant.limits(current_app.config)
        points = own["points_per_minute"] or "unlimited"
        fields = [usage.tenant.name, usage.metrics, own["max_metrics"], usage.series]
        fields += [own["max_series"], points, usage.keys]
        click.echo("\t".join(map(str, fields)))


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
@tenant_option("The tenant the key acts in (default: default).")
def create_command(name, rate, scope, tenant):
    """Create a key and print it once."""
    scopes = auth.SCOPE_CHOICES[scope]
    raw, key_id = auth.create_key(_store(), name, rate, scopes, tenant.id)
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
    header = "id\tprefix\ttenant\tname\tscopes\trate_per_minute\tcreated_at\tlast_used_at\tstatus"
    click.echo(header)
    for row in rows:
        used = isoformat_z(row.last_used_at) if row.last_used_at else "-"
        status = f"revoked {isoformat_z(row.revoked_at)}" if row.revoked_at else "active"
        rate = row.rate_limit or f"{default} (default)"
        fields = [row.id, row.prefix, row.tenant, row.name, row.scopes, rate]
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
@tenant_option()
def delete_metric_command(name, yes, tenant):
    """Delete a metric and all its points (the name is free again at once)."""
    if not yes:
        click.confirm(f"Delete metric {name!r} and all its points?", abort=True)
    store = _store()
    outcome = store.delete_metric(tenant.id, name, store.purge_metric)  # the CLI waits for it
    if outcome is None:
        raise click.ClickException(f"No metric named {name!r} in tenant {tenant.name!r}")
    metric, deleted, _ = outcome
    click.echo(f"Metric {name!r} ({metric.type}) deleted with {deleted} point(s).")


@metrics_cli.command("stat-key")
@click.argument("stat")
@tenant_option()
def stat_key_command(stat, tenant):
    """Create a StatHat stat key (the `key` of /c and /v) for the metric STAT maps to."""
    try:
        metric = metric_name(stat)
    except BadStatName as exc:
        raise click.ClickException(str(exc)) from None
    raw = generate_stat_key()
    hashed, prefix = auth.hash_key(raw), auth.display_prefix(raw)
    _store().create_stat_key(tenant.id, hashed, prefix, metric, utcnow())
    click.echo(f"Stat key for metric {metric!r}; it is shown only now:", err=True)
    click.echo(raw)


def init_app(app):
    """Register the command groups."""
    app.cli.add_command(db_cli)
    app.cli.add_command(tenants_cli)
    app.cli.add_command(keys_cli)
    app.cli.add_command(metrics_cli)
