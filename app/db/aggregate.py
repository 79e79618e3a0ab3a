"""The bucketed GROUP BY, one statement per metric and query, per dialect.

Buckets are ``floor(epoch_seconds / window)``, computed without the session time zone:
MySQL's ``TIMESTAMPDIFF`` from the epoch and SQLite's ``strftime('%s')`` both read the stored
DATETIME as UTC. Each statement scans one metric's range on the clustered/covering index.

Sums carry no float accumulation error. Both backends add each value's shortest decimal form
exactly (0.1 + 0.2 - 0.3 is 0, as the client wrote them): SQLite with the ``decimal_sum``
aggregate registered on every connection; MySQL with a ``DECIMAL(65,30)`` sum, plus a
double sum of the values too small for 30 decimal places (|v| < 1e-13).
"""

from decimal import Context, Decimal

from sqlalchemy import DECIMAL, Integer, case, cast, func, literal_column, select, text

from app.db import metrics
from app.db.schema import metric_points

OPERATIONS = ("sum", "count", "avg", "min", "max")
DEFAULT_OPERATION = {"counter": "sum", "value": "avg"}
# A double's 17 significant digits fit in DECIMAL(65,30) from this magnitude up; smaller
# values are summed as doubles beside the exact decimal total (1.36x a plain SUM, measured).
TINY = 1e-13
# Enough digits to add any doubles exactly (their decimal exponents span about 630 places).
EXACT = Context(prec=800)


class DecimalSum:
    """SQLite aggregate ``decimal_sum(x)``: the exact sum of each value's shortest decimal,
    returned as text so no digit is lost before Python reads it."""

    def __init__(self):
        self.total = None

    def step(self, value):
        """Take one value."""
        if value is not None:
            term = Decimal(repr(float(value)))
            self.total = term if self.total is None else EXACT.add(self.total, term)

    def finalize(self):
        """The sum as decimal text, or NULL for no rows."""
        return None if self.total is None else str(self.total)


def _bucket(dialect, window_seconds):
    column = metric_points.c.recorded_at
    if dialect == "sqlite":
        # SQLite's date functions round to milliseconds (…59.9999 would become the next
        # second), so cut the stored text to whole seconds first. Integer // integer renders
        # as SQLite's integer "/"; plain "/" would be true division.
        seconds = cast(func.strftime("%s", func.substr(column, 1, 19)), Integer)
        return (seconds // window_seconds).label("bucket")
    epoch = text("'1970-01-01 00:00:00'")
    seconds = func.timestampdiff(literal_column("SECOND"), epoch, column, type_=Integer)
    # DIV, not FLOOR(x / w): "/" is DECIMAL division rounded to div_precision_increment places.
    return seconds.op("DIV")(window_seconds).label("bucket")


def _measures(dialect, operation):
    value = metric_points.c.value
    if operation in ("min", "max"):
        return [getattr(func, operation)(value).label("result")]
    measures = [func.count().label("n")]
    if operation == "count":
        return measures
    if dialect == "sqlite":
        return measures + [func.decimal_sum(value).label("total")]
    tiny = func.abs(value) < TINY
    return measures + [
        func.sum(case((tiny, 0), else_=cast(value, DECIMAL(65, 30)))).label("total"),
        func.sum(case((tiny, value), else_=0)).label("residual"),
    ]


def _exact_total(row):
    total = Decimal(row.total)  # text from SQLite, Decimal from MySQL
    residual = getattr(row, "residual", None)
    return EXACT.add(total, Decimal(residual)) if residual else total


def _result(row, operation):
    if operation == "count":
        return int(row.n)
    if operation in ("min", "max"):
        return json_number(float(row.result))
    total = _exact_total(row)
    return json_number(total if operation == "sum" else EXACT.divide(total, row.n))


def json_number(value):
    """A whole number as an exact int of any size (a sum of counters reads 1500, not 1500.0;
    1e16 + 1 reads 10000000000000001), anything else as the nearest float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return int(value) if value.is_integer() else value


def bucket_values(conn, metric_id, operation, window_seconds, start, end):
    """{bucket index (epoch seconds // window): value} for points with start ≤ t < end."""
    dialect = conn.dialect.name
    bucket = _bucket(dialect, window_seconds)
    column = metric_points.c.recorded_at
    query = (
        select(bucket, *_measures(dialect, operation))
        .where(metric_points.c.metric_id == metric_id, column >= start, column < end)
        .group_by(literal_column("bucket"))
    )
    return {int(row.bucket): _result(row, operation) for row in conn.execute(query)}


def aggregate_metrics(conn, names, operation, window_seconds, start, end):
    """Bucketed values of each named metric: ([(Metric, operation, {bucket: value})], missing).

    ``operation`` None means each metric's type default (sum for counters, avg for values).
    Nothing is queried when a name is missing.
    """
    found = metrics.find(conn, names)
    missing = [name for name in names if name not in found]
    if missing:
        return [], missing
    results = []
    for name in names:
        metric = found[name]
        chosen = operation or DEFAULT_OPERATION[metric.type]
        values = bucket_values(conn, metric.id, chosen, window_seconds, start, end)
        results.append((metric, chosen, values))
    return results, []
