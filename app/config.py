"""Every environment variable the service reads, its default and its validation.

Nothing else in the project reads ``os.environ``. A bad value raises ``ConfigError`` naming the
variable, so the process fails at start instead of on the first request.
"""

import os
import re
import tempfile
from pathlib import Path

from crontab import CronTab

from app.core import signing_keys

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_PATH = PROJECT_ROOT / "var" / "glowing-fiesta.sqlite3"

# HS256's secret is at least as long as its hash (RFC 7518, section 3.2).
JWT_SECRET_MIN_BYTES = 32
_RATE_RE = re.compile(r"^\s*(\d+)\s*(?:(?:per|/)\s*(?:1\s*)?minute)?\s*$", re.IGNORECASE)


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


def _integer(name, raw, minimum):
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _at_least(minimum):
    """A parser of integers no smaller than ``minimum``."""
    return lambda name, raw: _integer(name, raw, minimum)


def _rate_per_minute(name, raw):
    match = _RATE_RE.match(str(raw))
    if not match or int(match.group(1)) < 1:
        raise ConfigError(f"{name} must look like '1000 per minute' or '1000', got {raw!r}")
    return int(match.group(1))


def _database_url(name, raw):
    if not raw.startswith(("sqlite:///", "mysql+pymysql://")):
        raise ConfigError(f"{name} must be a sqlite:/// or mysql+pymysql:// URL, got {raw!r}")
    return raw


def _points_url(name, raw):
    if not raw.startswith(("clickhouse://", "clickhouses://", "chdb:///")):
        raise ConfigError(
            f"{name} must be a clickhouse:// (a ClickHouse server) or chdb:/// (the in-process "
            f"engine, on a directory) URL, got {raw!r}"
        )
    return raw


def in_process_points(config):
    """Whether points live in the in-process ClickHouse engine (chdb), which one process at a
    time may open."""
    return (config.get("POINTS_URL") or "").startswith("chdb:")


def _boolean(name, raw):
    lowered = str(raw).lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _queue_name(name, raw):
    if not re.match(r"^[A-Za-z0-9._-]{1,64}$", raw):
        raise ConfigError(f"{name} must be 1-64 characters of A-Z, a-z, 0-9, '.', '_', '-'")
    return raw


def _cron(name, raw):
    try:
        CronTab(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a cron expression like '17 3 * * *': {exc}") from None
    return raw


def _choice(*choices):
    """A parser accepting one of ``choices``."""

    def parse(name, raw):
        if raw.lower() not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
        return raw.lower()

    return parse


def _between(minimum, maximum):
    """A parser of integers from ``minimum`` to ``maximum``."""

    def parse(name, raw):
        value = _integer(name, raw, minimum)
        if value > maximum:
            raise ConfigError(f"{name} must be at most {maximum}, got {value}")
        return value

    return parse


def _seconds_list(name, raw):
    """Comma-separated whole seconds, e.g. ``60,300,900``."""
    try:
        values = [int(part) for part in raw.split(",")]
    except ValueError:
        values = None
    if not values or any(value < 0 for value in values):
        raise ConfigError(f"{name} must be seconds separated by commas (60,300,900), got {raw!r}")
    return tuple(values)


def _origins(name, raw):
    """Comma-separated origins (``https://dash.example.com``) or ``*``."""
    origins = tuple(part.strip().rstrip("/") for part in raw.split(",") if part.strip())
    for origin in origins:
        if origin != "*" and not re.match(r"^https?://[^/\s]+$", origin):
            raise ConfigError(
                f"{name} must list origins like https://dash.example.com or *, got {origin!r}"
            )
    return origins


def _public_url(name, raw):
    if not re.match(r"^https?://[^/\s?#]+(/[^\s?#]*)?$", raw):
        raise ConfigError(f"{name} must be an http(s) URL like https://metrics.example.com")
    return raw.rstrip("/")


def _smtp_url(name, raw):
    if not re.match(r"^smtps?://([^@/\s]+@)?[^@/\s:]+(:\d{1,5})?/?$", raw):
        raise ConfigError(
            f"{name} must be smtp://[user:password@]host[:port] or smtps://…, got a bad value"
        )
    return raw


def _email(name, raw):
    if not re.match(r"^[^@\s]+@[^@\s]+$", raw):
        raise ConfigError(f"{name} must be an email address, got {raw!r}")
    return raw


def _redis_url(name, raw):
    if not raw.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"{name} must be a redis:// URL, got {raw!r}")
    return raw


def _jwt_secret(name, raw):
    if len(raw.encode()) < JWT_SECRET_MIN_BYTES:
        raise ConfigError(
            f"{name} must be at least {JWT_SECRET_MIN_BYTES} bytes (a 256-bit HS256 secret), "
            f"got {len(raw.encode())}"
        )
    return raw


def _public_key_file(name, raw):
    """A readable PEM or JWKS file of RS256/ES256 public keys (checked now; re-read when it
    changes)."""
    try:
        text = Path(raw).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ConfigError(
            f"{name} must name a readable PEM or JWKS file ({raw}: {reason})"
        ) from None
    try:
        signing_keys.parse(text)
    except signing_keys.KeyFileError as exc:
        raise ConfigError(f"{name} ({raw}) holds no usable public key: {exc}") from None
    return raw


# (environment variable = its config key, default, parser)
_SETTINGS = [
    ("DATABASE_URL", f"sqlite:///{DEFAULT_SQLITE_PATH}", _database_url),
    ("DATABASE_READ_URL", None, _database_url),
    # Points and rollups in ClickHouse instead (unset: in DATABASE_URL): see app/db/clickhouse/.
    ("POINTS_URL", None, _points_url),
    ("REDIS_URL", None, _redis_url),
    ("INGEST_MODE", "sync", None),
    ("METRICS_RETENTION_DAYS", 90, _at_least(0)),
    ("METRICS_RETENTION_GRACE_DAYS", 1, _at_least(0)),
    ("METRICS_RATE_LIMIT_DEFAULT", 1000, _rate_per_minute),
    ("METRICS_MAX_PAST_DAYS", 7, _at_least(0)),
    ("METRICS_MAX_FUTURE_SECONDS", 60, _at_least(0)),
    ("METRICS_MAX_BATCH", 1000, _at_least(1)),
    ("MAX_CONTENT_LENGTH", 1024 * 1024, _at_least(1)),
    ("METRICS_MAX_BUCKETS", 10000, _at_least(1)),
    ("METRICS_MAX_QUERY_NAMES", 100, _at_least(1)),
    ("METRICS_MAX_QUERY_POINTS", 200_000, _at_least(1)),
    ("METRICS_MAX_METRICS", 100_000, _at_least(1)),
    ("METRICS_MAX_TAGS", 16, _between(0, 64)),
    ("METRICS_MAX_SERIES_PER_METRIC", 10_000, _at_least(1)),
    # Per tenant (a tenant's own limits, `flask tenants update`, override these).
    ("TENANT_MAX_SERIES", 1_000_000, _at_least(1)),
    ("TENANT_POINTS_PER_MINUTE", 0, _at_least(0)),
    ("LOG_LEVEL", "INFO", None),
    ("LOG_FORMAT", "json", _choice("json", "text")),
    ("AUTH_FAILURE_LIMIT", 60, _rate_per_minute),
    ("TRUSTED_PROXY_HOPS", 0, _at_least(0)),
    # JWT bearer tokens (off unless JWT_SECRET or JWT_PUBLIC_KEYS): see app/api/tokens.py.
    ("JWT_SECRET", None, _jwt_secret),
    ("JWT_PUBLIC_KEYS", None, _public_key_file),
    ("JWT_ISSUER", None, None),
    ("JWT_AUDIENCE", None, None),
    ("CORS_ORIGINS", (), _origins),
    ("READY_DETAIL", "loopback", _choice("loopback", "always", "never")),
    # The batched writer (INGEST_MODE=sync): see app/db/group_commit.py.
    ("WRITER_LINGER_MS", 2, _at_least(0)),
    ("WRITER_MAX_BATCH", 5000, _at_least(1)),
    ("WRITER_QUEUE_LIMIT", 50_000, _at_least(1)),
    ("WRITER_WAIT_SECONDS", 10, _at_least(1)),
    # Queued ingestion (INGEST_MODE=queue): see app/queue_buffer.py and app/jobs/drain.py.
    ("RQ_INGEST_QUEUE", "ingest", _queue_name),
    ("RQ_MAINTENANCE_QUEUE", "maintenance", _queue_name),
    ("QUEUE_ALLOW_VOLATILE_REDIS", False, _boolean),
    ("QUEUE_DRAINERS", 2, _between(1, 64)),
    ("QUEUE_DRAIN_BATCH", 5000, _between(1, 100_000)),
    ("QUEUE_CLAIM_IDLE_SECONDS", 30, _between(1, 3600)),
    ("QUEUE_MAX_POINTS", 1_000_000, _at_least(1)),
    # Rollups: see app/db/rollups.py.
    ("METRICS_ROLLUPS", True, _boolean),
    ("METRICS_ROLLUP_MINUTE_DAYS", 90, _at_least(1)),
    ("METRICS_ROLLUP_HOUR_DAYS", 1825, _at_least(1)),
    # Maintenance (partitions, retention): see app/jobs/maintenance.py.
    ("MAINTENANCE_RUNNER", "auto", _choice("auto", "rq", "timer", "off")),
    ("MAINTENANCE_PARTITIONS_CRON", "7 * * * *", _cron),
    ("RETENTION_CRON", "17 3 * * *", _cron),
    ("PARTITIONS_AHEAD_DAYS", 7, _at_least(1)),
    ("RETENTION_CHUNK_ROWS", 10_000, _between(1, 10_000)),
    ("RETENTION_CHUNK_PAUSE_MS", 20, _at_least(0)),
    ("MAINTENANCE_RETRY_SECONDS", (60, 300, 900), _seconds_list),
    # Alerts: see app/jobs/alerts.py.
    ("ALERTS_CRON", "* * * * *", _cron),
    ("PUBLIC_URL", "http://localhost:8000", _public_url),
    ("SMTP_URL", None, _smtp_url),
    ("ALERTS_FROM", "glowing-fiesta@localhost", _email),
    ("ALERTS_ALLOW_PRIVATE_TARGETS", False, _boolean),
    # Prometheus self-metrics: see app/telemetry.py.
    ("METRICS_ENDPOINT_ENABLED", True, _boolean),
    ("PROMETHEUS_MULTIPROC_DIR", None, None),
]

INGEST_MODES = ("sync", "queue")
SERVER_VARIABLES = (
    "HOST",
    "PORT",
    "WEB_CONCURRENCY",
    "THREADS",
    "WORKER_MAX_REQUESTS",
    "REQUEST_READ_TIMEOUT",
)
VARIABLES = tuple(name for name, *_ in _SETTINGS) + SERVER_VARIABLES


def load(environ=None):
    """Read and validate every setting from ``environ`` (default: the process environment)."""
    environ = os.environ if environ is None else environ
    config = {}
    for name, default, parse in _SETTINGS:
        raw = environ.get(name)
        if raw is None or raw.strip() == "":
            config[name] = default
        else:
            config[name] = parse(name, raw.strip()) if parse else raw.strip()
    validate(config)
    return config


def validate(config):
    """Check settings that depend on each other; used for environment and test overrides."""
    if config["INGEST_MODE"] not in INGEST_MODES:
        raise ConfigError(
            f"INGEST_MODE must be one of {', '.join(INGEST_MODES)}, got {config['INGEST_MODE']!r}"
        )
    if config["INGEST_MODE"] == "queue" and not config["REDIS_URL"]:
        raise ConfigError("INGEST_MODE=queue needs REDIS_URL (the queue lives in Redis)")
    if config["INGEST_MODE"] == "queue" and in_process_points(config):
        raise ConfigError(
            "INGEST_MODE=queue cannot run with POINTS_URL=chdb:///…: the in-process engine "
            "serves one process, and queue drains run in RQ worker processes (use a "
            "clickhouse:// server, or INGEST_MODE=sync)"
        )
    if config["METRICS_RETENTION_DAYS"] == 0 and not config["METRICS_ROLLUPS"]:
        raise ConfigError("METRICS_RETENTION_DAYS=0 keeps no raw points: it needs METRICS_ROLLUPS")
    if config["MAINTENANCE_RUNNER"] == "rq" and not config["REDIS_URL"]:
        raise ConfigError("MAINTENANCE_RUNNER=rq needs REDIS_URL (rq-scheduler lives in Redis)")
    if config["LOG_LEVEL"].upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(
            f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {config['LOG_LEVEL']!r}"
        )
    _validate_jwt(config)


def _validate_jwt(config):
    """One source of token keys, and with it the issuer and audience tokens must name."""
    source = [name for name in ("JWT_SECRET", "JWT_PUBLIC_KEYS") if config.get(name)]
    if len(source) == 2:
        raise ConfigError(
            "JWT_SECRET and JWT_PUBLIC_KEYS are both set: tokens are verified with one of them"
        )
    for name, claim in (("JWT_ISSUER", "iss"), ("JWT_AUDIENCE", "aud")):
        if source and not config.get(name):
            raise ConfigError(f"{source[0]} needs {name}: every token's {claim} must match it")
        if config.get(name) and not source:
            raise ConfigError(
                f"{name} is set without JWT_SECRET or JWT_PUBLIC_KEYS: no token could be verified"
            )


def debug_requested(environ=None):
    """Whether LOG_LEVEL asks for DEBUG (then start-up errors keep their traceback)."""
    environ = os.environ if environ is None else environ
    return environ.get("LOG_LEVEL", "").strip().upper() == "DEBUG"


def ensure_multiprocess_dir(environ=None):
    """Give gunicorn's workers a directory for their Prometheus figures: PROMETHEUS_MULTIPROC_DIR
    if set (emptied of a previous run's files), else a new temporary one, exported to them."""
    environ = os.environ if environ is None else environ
    path = environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
    if path:
        Path(path).mkdir(parents=True, exist_ok=True)
        for stale in Path(path).glob("*.db"):
            stale.unlink()
    else:
        path = tempfile.mkdtemp(prefix="glowing-fiesta-prometheus-")
        environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


def raw_keep_days(config):
    """Days of raw points kept: METRICS_RETENTION_DAYS + METRICS_RETENTION_GRACE_DAYS (the
    grace is how late a day's last points may still be read or rebuilt from)."""
    return config["METRICS_RETENTION_DAYS"] + config["METRICS_RETENTION_GRACE_DAYS"]


def maintenance_runner(config):
    """Who runs maintenance: "rq" (workers + rq-scheduler, with REDIS_URL), "timer" (a thread
    in each app process) or "off"."""
    runner = config["MAINTENANCE_RUNNER"]
    if runner == "auto":
        return "rq" if config["REDIS_URL"] else "timer"
    return runner


def _server_integer(environ, name, default, minimum):
    """A gunicorn setting from ``environ`` (blank: ``default``), at least ``minimum``."""
    raw = environ.get(name, "").strip()
    return _integer(name, raw, minimum) if raw else default


def server_settings(environ=None):
    """gunicorn's settings: bind, workers, threads, recycling and the request read timeout, from
    HOST/PORT/WEB_CONCURRENCY/THREADS/WORKER_MAX_REQUESTS/REQUEST_READ_TIMEOUT."""
    environ = os.environ if environ is None else environ
    app_config = load(environ)
    # In-process rate limits and SQLite stay exact only with one process; the in-process
    # ClickHouse engine opens its directory in one process only.
    in_process = in_process_points(app_config)
    single = (
        app_config["DATABASE_URL"].startswith("sqlite") or not app_config["REDIS_URL"] or in_process
    )
    default_workers = 1 if single else 2 * (os.cpu_count() or 1)
    workers = _server_integer(environ, "WEB_CONCURRENCY", default_workers, 1)
    if in_process and workers > 1:
        raise ConfigError(
            f"WEB_CONCURRENCY={workers} cannot run with POINTS_URL=chdb:///…: the in-process "
            "engine opens its directory in one process only (use THREADS for concurrency, or a "
            "clickhouse:// server)"
        )
    # Off by default: a recycled worker closes its keep-alive connections, losing any request
    # a client has just sent on one (see README, Configuration).
    max_requests = _server_integer(environ, "WORKER_MAX_REQUESTS", 0, 0)
    return {
        "bind": f"{environ.get('HOST', '127.0.0.1')}:{_server_integer(environ, 'PORT', 8000, 1)}",
        "workers": workers,
        "threads": _server_integer(environ, "THREADS", 8, 1),
        "max_requests": max_requests,
        "max_requests_jitter": max_requests // 10,  # so the workers do not all restart at once
        "request_read_timeout": _server_integer(environ, "REQUEST_READ_TIMEOUT", 10, 1),
        "max_content_length": app_config["MAX_CONTENT_LENGTH"],
        "loglevel": app_config["LOG_LEVEL"].lower(),
        "logformat": app_config["LOG_FORMAT"],
    }
