"""Table objects for SQLAlchemy Core. The DDL itself lives in ``sql/<dialect>/``.

- ``tenants``: each tenant's name, its own limits (NULL: the settings' defaults) and its count
  of series of live metrics (kept under the tenant row's lock).
- ``metrics``: one row per metric; ``(tenant_id, name)`` is unique and names are case-sensitive
  (binary collation). A deleted metric is renamed ``~deleted~<id>`` and stamped ``deleted_at``
  until its points are gone.
- ``metric_points``: raw points, clustered (MySQL) or covered (SQLite) by
  ``(metric_id, recorded_at)`` so one metric's range is one contiguous scan. On MySQL there is
  deliberately no index on ``recorded_at`` alone: retention drops whole daily partitions.
- ``api_keys``: SHA-256 of each key, its tenant, display prefix, per-minute limit and scopes.
- ``idempotency_keys``: the answer given to each Idempotency-Key (per API key or JWT subject)
  and the queue jobs applied, kept a day; ``created_at`` is indexed for the sweep.
- ``jwt_subjects``: each (tenant, ``sub``) of a JWT that sent an Idempotency-Key, numbered for
  its receipts' scope; unique by the SHA-256 of ``sub``.
- ``metric_rollups_minute`` / ``metric_rollups_hour``: per metric and minute (hour), the
  count, exact sum (``total``, plus ``residual``: the double sum of |v| < 1e-13 on MySQL),
  minimum and maximum, and for value metrics the percentile ``sketch``; primary key
  ``(metric_id, bucket)`` so one metric's range is one scan.
- ``series``: the catalogue of series (a metric and its canonical tag set; series 0 is the
  untagged one); ``series_tags``: each (metric, tag key, value) with its series count, for
  the tag listings; ``series_rollups_minute`` / ``series_rollups_hour``: per-series rollups,
  kept once a metric has a tagged series (filters and group-by read them).
- ``rollup_state``: from when each rollup tier is complete, and its sketches.
- ``maintenance_runs``: each maintenance job's last start, success and result.
- ``named_locks`` (SQLite only): leased locks; MySQL uses GET_LOCK.
- ``stat_keys``: StatHat's classic per-stat keys (SHA-256), each naming one metric of a tenant.
- ``alerts``: a tenant's alerts (kind, metric, window, rule, targets, signing secret) and the
  state their last evaluation left; ``alert_events``: their transitions and notices' outcomes;
  ``alert_notices``: the outbox of notices, one row per notice and target, until sent or given
  up.
- ``schema_migrations``: which ``sql/`` files have been applied.
"""

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects import mysql

metadata = MetaData()

# DATETIME(6) on MySQL keeps microseconds; SQLite stores the same as text.
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
Double = Float(precision=53).with_variant(mysql.DOUBLE(asdecimal=False), "mysql", "mariadb")

tenants = Table(
    "tenants",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("max_metrics", Integer, nullable=True),
    Column("max_series", Integer, nullable=True),
    Column("points_per_minute", Integer, nullable=True),
    Column("series_count", BigInteger, nullable=False, server_default="0"),
    Column("created_at", Timestamp, nullable=False),
)

metrics = Table(
    "metrics",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, nullable=False, server_default="1"),
    Column("name", String(255), nullable=False),
    Column("type", String(8), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("deleted_at", Timestamp, nullable=True),
    Column("tagged", Integer, nullable=False, server_default="0"),
)

metric_points = Table(
    "metric_points",
    metadata,
    Column("metric_id", Integer, nullable=False),
    Column("recorded_at", Timestamp, nullable=False),
    Column("id", BigInteger, primary_key=True),
    Column("value", Double, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("series_id", Integer, nullable=False, server_default="0"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("rate_limit", Integer, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("last_used_at", Timestamp, nullable=True),
    Column("revoked_at", Timestamp, nullable=True),
    Column("scopes", String(32), nullable=False, server_default="read,write"),
    Column("tenant_id", Integer, nullable=False, server_default="1"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope_id", Integer, primary_key=True),
    Column("idem_key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("claim", String(32), nullable=True),
    Column("status", Integer, nullable=True),
    Column("body", Text, nullable=True),
    Column("created_at", Timestamp, nullable=False),
)

jwt_subjects = Table(
    "jwt_subjects",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, nullable=False),
    Column("subject_hash", String(64), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("created_at", Timestamp, nullable=False),
)

# The exact sum: DECIMAL(65,30) on MySQL; decimal text on SQLite (no exact decimal type there).
ExactTotal = Text().with_variant(mysql.DECIMAL(65, 30, asdecimal=True), "mysql", "mariadb")


def _rollup_table(name, per_series=False):
    keys = [Column("series_id", Integer, primary_key=True)] if per_series else []
    return Table(
        name,
        metadata,
        Column("metric_id", Integer, primary_key=True),
        *keys,
        Column("bucket", DateTime, primary_key=True),
        Column("n", BigInteger, nullable=False),
        Column("total", ExactTotal, nullable=False),
        Column("residual", Double, nullable=False),
        Column("vmin", Double, nullable=False),
        Column("vmax", Double, nullable=False),
        Column("sketch", LargeBinary, nullable=True),  # value metrics' (app/core/sketch.py)
    )


metric_rollups_minute = _rollup_table("metric_rollups_minute")
metric_rollups_hour = _rollup_table("metric_rollups_hour")
series_rollups_minute = _rollup_table("series_rollups_minute", per_series=True)
series_rollups_hour = _rollup_table("series_rollups_hour", per_series=True)

series = Table(
    "series",
    metadata,
    Column("metric_id", Integer, primary_key=True),
    Column("series_id", Integer, primary_key=True),
    Column("tags_hash", BigInteger, nullable=False),
    Column("tags", Text, nullable=False),
    Column("first_seen", Timestamp, nullable=False),
    Column("last_seen", Timestamp, nullable=False),
)

series_tags = Table(
    "series_tags",
    metadata,
    Column("metric_id", Integer, primary_key=True),
    Column("tag_key", String(64), primary_key=True),
    Column("tag_value", String(255), primary_key=True),
    Column("series_count", Integer, nullable=False),
)

rollup_state = Table(
    "rollup_state",
    metadata,
    Column("tier", String(16), primary_key=True),
    Column("complete_from", DateTime, nullable=True),
    Column("sketches_from", DateTime, nullable=True),
)

maintenance_runs = Table(
    "maintenance_runs",
    metadata,
    Column("job", String(64), primary_key=True),
    Column("last_started_at", Timestamp, nullable=True),
    Column("last_success_at", Timestamp, nullable=True),
    Column("last_result", Text, nullable=True),
    Column("last_error", Text, nullable=True),
)

named_locks = Table(
    "named_locks",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("owner", String(32), nullable=False),
    Column("expires_at", Timestamp, nullable=False),
)

stat_keys = Table(
    "stat_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("metric", String(255), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("tenant_id", Integer, nullable=False, server_default="1"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, nullable=False),
    Column("metric", String(255), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("window_name", String(4), nullable=False),
    Column("operation", String(16), nullable=True),
    Column("filters", Text, nullable=False),
    Column("notify", Text, nullable=False),
    Column("repeat_minutes", Integer, nullable=False, server_default="0"),
    Column("comparison", String(1), nullable=True),
    Column("threshold", Double, nullable=True),
    Column("percent", Double, nullable=True),
    Column("direction", String(8), nullable=True),
    Column("compare_to", String(4), nullable=True),
    Column("secret", String(64), nullable=False),
    Column("state", String(8), nullable=False, server_default="ok"),
    Column("last_value", Double, nullable=True),
    Column("baseline", Double, nullable=True),
    Column("evaluated_at", Timestamp, nullable=True),
    Column("changed_at", Timestamp, nullable=True),
    Column("notified_at", Timestamp, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)

alert_events = Table(
    "alert_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("alert_id", Integer, nullable=False),
    Column("at", Timestamp, nullable=False),
    Column("type", String(12), nullable=False),
    Column("state", String(8), nullable=False),
    Column("channel", String(8), nullable=True),
    Column("outcome", String(10), nullable=True),
    Column("notice_id", String(64), nullable=True),
    Column("detail", String(255), nullable=True),
)

alert_notices = Table(
    "alert_notices",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("alert_id", Integer, nullable=False),
    Column("notice_id", String(64), nullable=False),
    Column("target", String(2048), nullable=False),
    Column("body", Text, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Timestamp, nullable=False),
    Column("sent_at", Timestamp, nullable=True),
    Column("failed_at", Timestamp, nullable=True),
    Column("created_at", Timestamp, nullable=False),
)

schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("version", String(64), primary_key=True),
    Column("applied_at", Timestamp, nullable=False),
)


def keyed_by_metric():
    """Every table with a ``metric_id`` column: what deleting a metric must empty."""
    return [table for table in metadata.sorted_tables if "metric_id" in table.c]
