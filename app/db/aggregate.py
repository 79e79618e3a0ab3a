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
from decimal import Context, Decimal

from app.db import metrics

OPERATIONS = ("sum", "count", "avg", "min", "max")
DEFAULT_OPERATION = {"counter": "sum", "value": "avg"}
# A double's 17 significant digits fit in DECIMAL(65,30) from this magnitude up; smaller
# values are summed as doubles beside the exact decimal total (1.36x a plain SUM, measured).
TINY = 1e-13
# Enough digits to add any doubles exactly (their decimal exponents span about 630 places).
EXACT = Context(prec=800)


def exact_decimal(value):
    """A stored value as an exact Decimal: decimal text as written, a double by its shortest
    decimal form."""
    return Decimal(value) if isinstance(value, str) else Decimal(repr(float(value)))


def decimal_add(left, right):
    """SQLite function ``decimal_add(a, b)``: the exact sum of two decimal texts, as text."""
    return str(EXACT.add(exact_decimal(left), exact_decimal(right)))


class DecimalSum:
    """SQLite aggregate ``decimal_sum(x)``: the exact sum of each value's shortest decimal (or
    of decimal texts, as rollups keep), returned as text so no digit is lost before Python
    reads it."""

    def __init__(self):
        self.total = None

    def step(self, value):
        """Take one value."""
        if value is not None:
            term = exact_decimal(value)
            self.total = term if self.total is None else EXACT.add(self.total, term)

    def finalize(self):
        """The sum as decimal text, or NULL for no rows."""
        return None if self.total is None else str(self.total)


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
_DIALECT_SQL = {
    "mysql": {
        # TIMESTAMPDIFF from the epoch reads the DATETIME as UTC whatever the session's zone;
        # DIV, not FLOOR(x / w): "/" is DECIMAL division rounded to div_precision_increment.
        "slot": "TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', {column}) DIV {window}",
        "raw_total": f"SUM(CASE WHEN ABS(value) < {TINY!r} THEN 0 "
        "ELSE CAST(value AS DECIMAL(65,30)) END)",
        "raw_residual": f"SUM(CASE WHEN ABS(value) < {TINY!r} THEN value ELSE 0 END)",
        "sum_total": "SUM({column})",
        "param": "%s",
    },
    "sqlite": {
        # SQLite's date functions round to milliseconds (…59.9999 would become the next
        # second): cut the stored text to whole seconds first; integer "/" truncates.
        "slot": "CAST(strftime('%s', substr({column}, 1, 19)) AS INTEGER) / {window}",
        "raw_total": "decimal_sum(value)",
        "raw_residual": "0.0",
        "sum_total": "decimal_sum({column})",
        "param": "?",
    },
}
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
    for name in names:
        if raw:
            expression = _RAW_MEASURES.get(name) or sql[f"raw_{name}"]
        else:
            expression = _MERGED_MEASURES.get(name) or sql["sum_total"].format(column="total")
        found.append(f"{expression} AS {name}")
    return ", ".join(found)


@functools.lru_cache(maxsize=512)
def _statement(dialect, operation, window_seconds, shape):
    """The SQL for one metric's buckets over the sources in ``shape`` ((source, intervals)…)."""
    sql = _DIALECT_SQL["sqlite" if dialect == "sqlite" else "mysql"]
    names = NEEDS[operation]
    selects = []
    for source, table, column in _SOURCES:
        count = dict(shape).get(source, 0)
        if not count:
            continue
        slot = sql["slot"].format(column=column, window=window_seconds)
        within = " OR ".join(
            [f"({column} >= {sql['param']} AND {column} < {sql['param']})"] * count
        )
        selects.append(
            f"SELECT {slot} AS slot, {_measures(sql, names, source == 'raw')} FROM {table} "
            f"WHERE metric_id = {sql['param']} AND ({within}) GROUP BY slot"
        )
    if len(selects) == 1:
        return selects[0]
    merged = _measures(sql, names, raw=False)
    return f"SELECT slot, {merged} FROM ({' UNION ALL '.join(selects)}) parts GROUP BY slot"


def _parameters(dialect, metric_id, plan):
    """The statement's parameters: per source, the metric and its intervals' bounds."""
    values = []
    for source, _, _ in _SOURCES:
        intervals = getattr(plan, source)
        if intervals:
            values.append(metric_id)
            for start, end in intervals:
                values += [_moment(dialect, start), _moment(dialect, end)]
    return tuple(values)


def _moment(dialect, moment):
    # SQLite compares the stored text: bind it in the same "YYYY-MM-DD HH:MM:SS.ffffff".
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f") if dialect == "sqlite" else moment


def bucket_values(conn, metric_id, operation, window_seconds, plan):
    """{bucket index (epoch seconds // window): value} over the plan's sources, in one
    statement (a UNION ALL of each source's buckets, added up)."""
    dialect = conn.dialect.name
    shape = tuple((source, len(getattr(plan, source))) for source, _, _ in _SOURCES)
    if not any(count for _, count in shape):
        return {}
    statement = _statement(dialect, operation, window_seconds, shape)
    rows = conn.exec_driver_sql(statement, _parameters(dialect, metric_id, plan))
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
