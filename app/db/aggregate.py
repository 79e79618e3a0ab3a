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
from dataclasses import dataclass
from decimal import Decimal

from app.db import dialects
from app.db.decimals import EXACT, TINY
from app.db.rollups import Partial

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
_SOURCES = (("raw", "recorded_at"), ("minute", "bucket"), ("hour", "bucket"))
_TABLES = {  # (per metric, per series)
    "raw": ("metric_points", "metric_points"),
    "minute": ("metric_rollups_minute", "series_rollups_minute"),
    "hour": ("metric_rollups_hour", "series_rollups_hour"),
}


@dataclass(frozen=True)
class Selection:
    """Which of a metric's series a query reads: all of them (``series_ids`` None: the
    per-metric rows), or some (the per-series rows), added up, or each on its own
    (``by_series``: for grouping)."""

    series_ids: tuple | None = None
    by_series: bool = False


ALL_SERIES = Selection()


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
def _statement(sql, operation, window_seconds, shape, series_count, by_series):
    """The SQL for one metric's buckets over the sources in ``shape`` ((source, intervals)…),
    of all its series (``series_count`` None) or of that many, per series or added up."""
    names = NEEDS[operation]
    keys = "series_id, slot" if by_series else "slot"
    series_filter = (
        ""
        if series_count is None
        else f" AND series_id IN ({', '.join([sql.PARAM] * series_count)})"
    )
    selects = []
    for source, column in _SOURCES:
        count = dict(shape).get(source, 0)
        if not count:
            continue
        table = _TABLES[source][series_count is not None]
        slot = sql.SLOT.format(column=column, window=window_seconds)
        within = " OR ".join([f"({column} >= {sql.PARAM} AND {column} < {sql.PARAM})"] * count)
        head = f"series_id, {slot} AS slot" if by_series else f"{slot} AS slot"
        selects.append(
            f"SELECT {head}, {_measures(sql, names, source == 'raw')} FROM {table} "
            f"WHERE metric_id = {sql.PARAM}{series_filter} AND ({within}) GROUP BY {keys}"
        )
    if len(selects) == 1:
        return selects[0]
    merged = _measures(sql, names, raw=False)
    return f"SELECT {keys}, {merged} FROM ({' UNION ALL '.join(selects)}) parts GROUP BY {keys}"


def _parameters(sql, metric_id, plan, series_ids):
    """The statement's parameters: per source, the metric, its series and its intervals."""
    values = []
    for source, _ in _SOURCES:
        intervals = getattr(plan, source)
        if intervals:
            values.append(metric_id)
            values += series_ids or ()
            for start, end in intervals:
                values += [sql.bind_moment(start), sql.bind_moment(end)]
    return tuple(values)


def _rows(conn, metric_id, operation, window_seconds, plan, selection):
    sql = dialects.of(conn)
    shape = tuple((source, len(getattr(plan, source))) for source, _ in _SOURCES)
    if not any(count for _, count in shape) or selection.series_ids == ():
        return []
    count = None if selection.series_ids is None else len(selection.series_ids)
    statement = _statement(sql, operation, window_seconds, shape, count, selection.by_series)
    parameters = _parameters(sql, metric_id, plan, selection.series_ids)
    return conn.exec_driver_sql(statement, parameters).all()


class SqlSource:
    """The relational points as the query layer reads them: one connection's statements
    (``app/db/clickhouse/queries.py`` answers the same calls from ClickHouse)."""

    def __init__(self, conn):
        self.conn = conn

    def bucket_values(self, metric_id, operation, window_seconds, plan, selection=ALL_SERIES):
        """See ``bucket_values``."""
        return bucket_values(self.conn, metric_id, operation, window_seconds, plan, selection)

    def bucket_partials(self, metric_id, operation, window_seconds, plan, selection=ALL_SERIES):
        """See ``bucket_partials``."""
        return bucket_partials(self.conn, metric_id, operation, window_seconds, plan, selection)

    def series_buckets(self, metric_id, operation, window_seconds, plan, series_ids):
        """See ``series_buckets``."""
        return series_buckets(self.conn, metric_id, operation, window_seconds, plan, series_ids)


def bucket_values(conn, metric_id, operation, window_seconds, plan, selection=ALL_SERIES):
    """{bucket index (epoch seconds // window): value} over the plan's sources, in one
    statement (a UNION ALL of each source's buckets, added up), of the selected series."""
    rows = _rows(conn, metric_id, operation, window_seconds, plan, selection)
    # The bucket's index is named "slot": "bucket" is a column of the rollup tables.
    return {int(row.slot): row_value(row, operation) for row in rows}


def bucket_partials(conn, metric_id, operation, window_seconds, plan, selection=ALL_SERIES):
    """{bucket index: Partial} (the operation's measures) of the selected series added up."""
    rows = _rows(conn, metric_id, operation, window_seconds, plan, selection)
    partial = partial_of(operation)
    return {int(row.slot): partial(row) for row in rows}


def series_buckets(conn, metric_id, operation, window_seconds, plan, series_ids):
    """{series_id: {bucket index: Partial}} of the given series (what grouping merges)."""
    selection = Selection(tuple(series_ids), by_series=True)
    found, partial = {}, partial_of(operation)
    for row in _rows(conn, metric_id, operation, window_seconds, plan, selection):
        found.setdefault(row.series_id, {})[int(row.slot)] = partial(row)
    return found


def partial_of(operation):
    """row → Partial of the measures ``operation``'s statement selects (the others unset):
    decided once per statement, not looked up in every row."""
    names = NEEDS[operation]
    has_total, has_n = "total" in names, "n" in names
    has_min, has_max = "vmin" in names, "vmax" in names

    def partial(row):
        vmin = row.vmin if has_min else None
        vmax = row.vmax if has_max else None
        return Partial(
            int(row.n or 0) if has_n else 0,  # SUM(n) is a DECIMAL on MySQL
            _exact_total(row) if has_total else Decimal(0),
            0.0,
            None if vmin is None else float(vmin),
            None if vmax is None else float(vmax),
        )

    return partial


def _exact_total(row):
    total = Decimal(row.total)  # text from SQLite, Decimal from MySQL
    residual = float(row.residual or 0)
    return EXACT.add(total, Decimal(residual)) if residual else total


def row_value(row, operation):
    """The operation's value of a bucket's row (the measures its statement selects)."""
    if operation == "count":
        return int(row.n)
    if operation in ("min", "max"):
        return json_number(float(getattr(row, "v" + operation)))
    total = _exact_total(row)
    return json_number(total if operation == "sum" else EXACT.divide(total, row.n))


def value_of(partial, operation):
    """The operation's value of a merged Partial (None where an empty bucket has none)."""
    if operation == "count":
        return partial.n
    if operation in ("min", "max"):
        value = getattr(partial, "v" + operation)
        return None if value is None else json_number(float(value))
    if operation == "sum":
        return json_number(partial.total)
    return None if not partial.n else json_number(EXACT.divide(partial.total, partial.n))


def json_number(value):
    """A whole number as an exact int of any size (a sum of counters reads 1500, not 1500.0;
    1e16 + 1 reads 10000000000000001), anything else as the nearest float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return int(value) if value.is_integer() else value
