"""The bucketed GROUP BY, one statement per metric and query, per dialect, over the sources a
plan (``app/db/planner.py``) picked: raw points, minute rollups, hourly rollups.

Buckets are ``floor(epoch_seconds / window)``, computed without the session time zone:
MySQL's ``TIMESTAMPDIFF`` from the epoch and SQLite's ``strftime('%s')`` both read the stored
DATETIME as UTC. Each statement scans one metric's range on the clustered/covering index.

Sums carry no float accumulation error. Both backends add each value's shortest decimal form
exactly (0.1 + 0.2 - 0.3 is 0, as the client wrote them): SQLite with the ``decimal_sum``
aggregate registered on every connection; MySQL with a ``DECIMAL(65,30)`` sum, plus a
double sum of the values too small for 30 decimal places (|v| < 1e-13).
"""

import functools
from decimal import Decimal

from app.core.constants import DEFAULT_OPERATION
from app.db import dialects, metrics
from app.db.decimals import EXACT, TINY

# What each operation needs of a bucket: count n, exact total (+ residual), min, max. Each
# column costs a few µs a row in PyMySQL's decoding: a month of hourly sums is 720 rows.
NEEDS = {
    "count": ("n",),
    "sum": ("total", "residual"),
    "avg": ("n", "total", "residual"),
    "min": ("vmin",),
    "max": ("vmax",),
}

# The statement is plain SQL text, built once per dialect and shape (operation, window, how
# many intervals each source has) and cached: building it with SQLAlchemy's expression
# language on every query cost more than running it.
_RAW_MEASURES = {"n": "COUNT(*)", "vmin": "MIN(value)", "vmax": "MAX(value)"}
_MERGED_MEASURES = {
    "n": "SUM(n)",
    "residual": "SUM(residual)",
    "vmin": "MIN(vmin)",
    "vmax": "MAX(vmax)",
}
_SOURCES = (("raw", "metric_points", "recorded_at"), ("minute", "metric_rollups_minute", "bucket"),
            ("hour", "metric_rollups_hour", "bucket"))  # fmt: skip


def _measures(sql, names, raw):
    found = []
    raw_total, raw_residual = sql.raw_sums(TINY)
    raw_sums = {"total": raw_total, "residual": raw_residual}
    for name in names:
        if raw:
            expression = _RAW_MEASURES.get(name) or raw_sums[name]
        else:
            expression = _MERGED_MEASURES.get(name) or sql.SUM_TOTAL.format(column="total")
        found.append(f"{expression} AS {name}")
    return ", ".join(found)


@functools.lru_cache(maxsize=512)
def _statement(sql, operation, window_seconds, shape):
    """The SQL for one metric's buckets over the sources in ``shape`` ((source, intervals)…)."""
    names = NEEDS[operation]
    selects = []
    for source, table, column in _SOURCES:
        count = dict(shape).get(source, 0)
        if not count:
            continue
        slot = sql.SLOT.format(column=column, window=window_seconds)
        within = " OR ".join([f"({column} >= {sql.PARAM} AND {column} < {sql.PARAM})"] * count)
        selects.append(
            f"SELECT {slot} AS slot, {_measures(sql, names, source == 'raw')} FROM {table} "
            f"WHERE metric_id = {sql.PARAM} AND ({within}) GROUP BY slot"
        )
    if len(selects) == 1:
        return selects[0]
    merged = _measures(sql, names, raw=False)
    return f"SELECT slot, {merged} FROM ({' UNION ALL '.join(selects)}) parts GROUP BY slot"


def _parameters(sql, metric_id, plan):
    """The statement's parameters: per source, the metric and its intervals' bounds."""
    values = []
    for source, _, _ in _SOURCES:
        intervals = getattr(plan, source)
        if intervals:
            values.append(metric_id)
            for start, end in intervals:
                values += [sql.bind_moment(start), sql.bind_moment(end)]
    return tuple(values)


def bucket_values(conn, metric_id, operation, window_seconds, plan):
    """{bucket index (epoch seconds // window): value} over the plan's sources, in one
    statement (a UNION ALL of each source's buckets, added up)."""
    sql = dialects.of(conn)
    shape = tuple((source, len(getattr(plan, source))) for source, _, _ in _SOURCES)
    if not any(count for _, count in shape):
        return {}
    statement = _statement(sql, operation, window_seconds, shape)
    rows = conn.exec_driver_sql(statement, _parameters(sql, metric_id, plan))
    # The bucket's index is named "slot": "bucket" is a column of the rollup tables.
    return {int(row.slot): _result(row, operation) for row in rows}


def _exact_total(row):
    total = Decimal(row.total)  # text from SQLite, Decimal from MySQL
    residual = float(row.residual or 0)
    return EXACT.add(total, Decimal(residual)) if residual else total


def _result(row, operation):
    if operation == "count":
        return int(row.n)
    if operation in ("min", "max"):
        return json_number(float(getattr(row, "v" + operation)))
    total = _exact_total(row)
    return json_number(total if operation == "sum" else EXACT.divide(total, row.n))


def json_number(value):
    """A whole number as an exact int of any size (a sum of counters reads 1500, not 1500.0;
    1e16 + 1 reads 10000000000000001), anything else as the nearest float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return int(value) if value.is_integer() else value


def aggregate_metrics(conn, names, operation, window_seconds, plan, known=None):
    """Bucketed values of each named metric: ([(Metric, operation, {bucket: value})], missing).

    ``operation`` None means each metric's type default (sum for counters, avg for values).
    ``known``: {name: Metric} already looked up. Nothing is queried when a name is missing.
    """
    found = dict(known or {})
    found.update(metrics.find(conn, [name for name in names if name not in found]))
    missing = [name for name in names if name not in found]
    if missing:
        return [], missing
    results = []
    for name in names:
        metric = found[name]
        chosen = operation or DEFAULT_OPERATION[metric.type]
        values = bucket_values(conn, metric.id, chosen, window_seconds, plan)
        results.append((metric, chosen, values))
    return results, []
