"""The bucketed GROUP BY, one statement per metric and query, per dialect.

Buckets are ``floor(epoch_seconds / window)``, computed without the session time zone:
MySQL's ``TIMESTAMPDIFF`` from the epoch and SQLite's ``strftime('%s')`` both read the stored
DATETIME as UTC. Each statement scans one metric's range on the clustered/covering index.

Sums are exact, not merely float accumulations: MySQL sums ``DECIMAL(65,30)`` (the shortest
decimal of each double, so 0.1 + 0.2 - 0.3 is 0), SQLite uses ``fsum`` (Python's correctly
rounded ``math.fsum``, registered on every connection).
"""

import math
from decimal import Decimal

from sqlalchemy import DECIMAL, Integer, cast, func, literal_column, select, text

from app.db.schema import metric_points

OPERATIONS = ("sum", "count", "avg", "min", "max")
# Below this total magnitude DECIMAL(65,30) has fewer digits than a double: sum doubles.
_DECIMAL_SUM_FLOOR = 1e-12


class FSum:
    """SQLite aggregate ``fsum(x)``: the correctly rounded sum of its inputs."""

    def __init__(self):
        self.values = []

    def step(self, value):
        """Take one value."""
        if value is not None:
            self.values.append(value)

    def finalize(self):
        """The sum, or NULL for no rows."""
        return math.fsum(self.values) if self.values else None


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
        return measures + [func.fsum(value).label("total")]
    return measures + [
        func.sum(cast(value, DECIMAL(65, 30))).label("total"),
        func.sum(value).label("float_total"),
        func.sum(func.abs(value)).label("magnitude"),
    ]


def _total(row):
    total = row.total
    if isinstance(total, Decimal) and (row.magnitude or 0) < _DECIMAL_SUM_FLOOR:
        total = row.float_total
    return total


def _result(row, operation):
    if operation in ("min", "max"):
        return float(row.result)
    if operation == "count":
        return int(row.n)
    total = _total(row)
    if operation == "sum":
        return float(total)
    if isinstance(total, Decimal):
        return float(total / row.n)
    return total / row.n


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
