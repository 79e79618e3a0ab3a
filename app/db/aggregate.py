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

from decimal import Context, Decimal

from sqlalchemy import (
    DECIMAL,
    Integer,
    and_,
    case,
    cast,
    func,
    literal_column,
    or_,
    select,
    text,
    union_all,
)

from app.db import metrics
from app.db.schema import metric_points, metric_rollups_hour, metric_rollups_minute

MINUTE, HOUR = "minute", "hour"
ROLLUP_TABLES = {MINUTE: metric_rollups_minute, HOUR: metric_rollups_hour}

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


def _bucket(dialect, column, window_seconds):
    if dialect == "sqlite":
        # SQLite's date functions round to milliseconds (…59.9999 would become the next
        # second), so cut the stored text to whole seconds first. Integer // integer renders
        # as SQLite's integer "/"; plain "/" would be true division.
        seconds = cast(func.strftime("%s", func.substr(column, 1, 19)), Integer)
        return (seconds // window_seconds).label("slot")
    epoch = text("'1970-01-01 00:00:00'")
    seconds = func.timestampdiff(literal_column("SECOND"), epoch, column, type_=Integer)
    # DIV, not FLOOR(x / w): "/" is DECIMAL division rounded to div_precision_increment places.
    return seconds.op("DIV")(window_seconds).label("slot")


# What each operation needs of a bucket: count n, exact total (+ residual), min, max.
NEEDS = {
    "count": ("n",),
    "sum": ("n", "total", "residual"),
    "avg": ("n", "total", "residual"),
    "min": ("vmin",),
    "max": ("vmax",),
}


def _raw_measures(dialect, names):
    value = metric_points.c.value
    tiny = func.abs(value) < TINY
    if dialect == "sqlite":
        total, residual = func.decimal_sum(value), literal_column("0.0")
    else:
        total = func.sum(case((tiny, 0), else_=cast(value, DECIMAL(65, 30))))
        residual = func.sum(case((tiny, value), else_=0))
    measures = {
        "n": func.count(),
        "total": total,
        "residual": residual,
        "vmin": func.min(value),
        "vmax": func.max(value),
    }
    return [measures[name].label(name) for name in names]


def _merged_measures(dialect, columns, names):
    """Adding up partial aggregates (rollup rows, or the sources' partial buckets)."""
    total = func.decimal_sum if dialect == "sqlite" else func.sum
    measures = {
        "n": lambda: func.sum(columns.n),
        "total": lambda: total(columns.total),
        "residual": lambda: func.sum(columns.residual),
        "vmin": lambda: func.min(columns.vmin),
        "vmax": lambda: func.max(columns.vmax),
    }
    return [measures[name]().label(name) for name in names]


def _within(column, intervals):
    return or_(*[and_(column >= start, column < end) for start, end in intervals])


def _sources(dialect, metric_id, names, window_seconds, plan):
    """One SELECT per source the plan uses, each grouped by bucket."""
    selects = []
    column = metric_points.c.recorded_at
    if plan.raw:
        selects.append(
            select(_bucket(dialect, column, window_seconds), *_raw_measures(dialect, names))
            .where(metric_points.c.metric_id == metric_id, _within(column, plan.raw))
            .group_by(literal_column("slot"))
        )
    for tier, intervals in ((MINUTE, plan.minute), (HOUR, plan.hour)):
        if intervals:
            table = ROLLUP_TABLES[tier]
            bucket = _bucket(dialect, table.c.bucket, window_seconds)
            selects.append(
                select(bucket, *_merged_measures(dialect, table.c, names))
                .where(table.c.metric_id == metric_id, _within(table.c.bucket, intervals))
                .group_by(literal_column("slot"))
            )
    return selects


def bucket_values(conn, metric_id, operation, window_seconds, plan):
    """{bucket index (epoch seconds // window): value} over the plan's sources, in one
    statement (a UNION ALL of each source's buckets, added up)."""
    dialect = conn.dialect.name
    names = NEEDS[operation]
    selects = _sources(dialect, metric_id, names, window_seconds, plan)
    if not selects:
        return {}
    if len(selects) == 1:
        query = selects[0]
    else:
        parts = union_all(*selects).subquery()
        query = select(parts.c.slot, *_merged_measures(dialect, parts.c, names)).group_by(
            parts.c.slot
        )
    # The bucket's index is labelled "slot": "bucket" is a column of the rollup tables.
    return {int(row.slot): _result(row, operation) for row in conn.execute(query)}


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
