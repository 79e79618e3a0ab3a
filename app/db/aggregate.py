"""The bucketed GROUP BY, one statement per metric and query, per dialect, over the sources a
plan (``app/db/planner.py``) picked: raw points, minute rollups, hourly rollups.

Buckets are ``floor(epoch_seconds / window)``, computed without the session time zone:
MySQL's ``TIMESTAMPDIFF`` from the epoch and SQLite's ``strftime('%s')`` both read the stored
DATETIME as UTC. Each statement scans one metric's range on the clustered/covering index.

Sums carry no float accumulation error. Both backends add each value's shortest decimal form
exactly (0.1 + 0.2 - 0.3 is 0, as the client wrote them): SQLite with the ``decimal_sum``
aggregate registered on every connection; MySQL with a ``DECIMAL(65,30)`` sum, plus a
double sum of the values too small for 30 decimal places (|v| < 1e-13).

Percentiles (p50 … p99) cannot be merged by a GROUP BY: their statement returns each rollup
row's sketch and each raw point's value, and the buckets are merged here — rollup sketches add
up, raw values stay exact until a bucket also holds a sketch (``app/core/sketch.py``), so a
query over raw points alone gives the exact nearest-rank value.
"""

import functools
from dataclasses import dataclass
from decimal import Decimal

from app.core.constants import PERCENTILES
from app.core.sketch import Exact, combine, merge_all, merged_quantile
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
    selects = []
    for source, column in _SOURCES:
        count = dict(shape).get(source, 0)
        if not count:
            continue
        table = _TABLES[source][series_count is not None]
        slot = sql.SLOT.format(column=column, window=window_seconds)
        head = f"series_id, {slot} AS slot" if by_series else f"{slot} AS slot"
        selects.append(
            f"SELECT {head}, {_measures(sql, names, source == 'raw')} FROM {table} "
            f"WHERE {_within(sql, column, count, series_count)} GROUP BY {keys}"
        )
    if len(selects) == 1:
        return selects[0]
    merged = _measures(sql, names, raw=False)
    return f"SELECT {keys}, {merged} FROM ({' UNION ALL '.join(selects)}) parts GROUP BY {keys}"


class TooManyPoints(Exception):
    """A percentile query would read more raw points than it may."""


def _source_parameters(sql, metric_id, intervals, series_ids):
    values = [metric_id, *(series_ids or ())]
    for start, end in intervals:
        values += [sql.bind_moment(start), sql.bind_moment(end)]
    return tuple(values)


def _within(sql, column, count, series_count):
    series_filter = (
        ""
        if series_count is None
        else f" AND series_id IN ({', '.join([sql.PARAM] * series_count)})"
    )
    intervals = " OR ".join([f"({column} >= {sql.PARAM} AND {column} < {sql.PARAM})"] * count)
    return f"metric_id = {sql.PARAM}{series_filter} AND ({intervals})"


@functools.lru_cache(maxsize=256)
def _sketch_statement(sql, source, window_seconds, count, series_count, by_series):
    """The SQL for one source's rows of a percentile: each rollup row's sketch, or each raw
    point's value, with its slot (and series)."""
    column = dict(_SOURCES)[source]
    table = _TABLES[source][series_count is not None]
    slot = sql.SLOT.format(column=column, window=window_seconds)
    head = f"series_id, {slot} AS slot" if by_series else f"{slot} AS slot"
    measure = "value" if source == "raw" else "sketch"
    return (
        f"SELECT {head}, {measure} FROM {table} WHERE {_within(sql, column, count, series_count)}"
    )


def raw_points(conn, metric_id, plan, selection, limit):
    """How many raw points of the selected series the plan reads, counting up to ``limit`` + 1
    at most."""
    if not plan.raw or selection.series_ids == ():
        return 0
    sql = dialects.of(conn)
    count = None if selection.series_ids is None else len(selection.series_ids)
    where = _within(sql, "recorded_at", len(plan.raw), count)
    statement = (
        f"SELECT COUNT(*) FROM (SELECT 1 FROM metric_points WHERE {where} "
        f"LIMIT {int(limit) + 1}) capped"
    )
    parameters = _source_parameters(sql, metric_id, plan.raw, selection.series_ids)
    return conn.exec_driver_sql(statement, parameters).scalar()


def _sketch_parts(conn, metric_id, window_seconds, plan, selection):
    """{slot, or (series_id, slot) when by series: ([encoded sketches], [raw values])} of the
    selected series over the plan's sources."""
    if selection.series_ids == ():
        return {}
    sql = dialects.of(conn)
    count = None if selection.series_ids is None else len(selection.series_ids)
    by_series = selection.by_series
    found = {}
    for source, _ in _SOURCES:
        intervals = getattr(plan, source)
        if not intervals:
            continue
        statement = _sketch_statement(sql, source, window_seconds, len(intervals), count, by_series)
        parameters = _source_parameters(sql, metric_id, intervals, selection.series_ids)
        place = 1 if source == "raw" else 0
        for row in conn.exec_driver_sql(statement, parameters):
            if row[-1] is None:  # a counter's row (never asked for) has no sketch
                continue
            key = (row[0], int(row[1])) if by_series else int(row[0])
            parts = found.get(key)
            if parts is None:
                parts = found[key] = ([], [])
            parts[place].append(row[-1])
    return found


def _partial_of_parts(blobs, values):
    """A Partial holding the merged sketch of some encoded sketches and raw values (exact
    while there are only values)."""
    sketch = merge_all(blobs) if blobs else None
    if values:
        sketch = Exact(values) if sketch is None else combine(sketch, Exact(values))
    return Partial(n=sketch.count, sketch=sketch)


def _sketch_partials(conn, metric_id, window_seconds, plan, selection):
    """{slot, or (series_id, slot) when by series: Partial holding only a ``sketch``}."""
    parts = _sketch_parts(conn, metric_id, window_seconds, plan, selection)
    return {key: _partial_of_parts(*found) for key, found in parts.items()}


def _percentile_values(conn, metric_id, operation, window_seconds, plan, selection):
    """{slot: the percentile}: a slot of one rollup row is read off its encoded sketch."""
    q = PERCENTILES[operation]
    values = {}
    for slot, (blobs, raw) in _sketch_parts(
        conn, metric_id, window_seconds, plan, selection
    ).items():
        if len(blobs) == 1 and not raw:
            values[slot] = json_number(merged_quantile(blobs, q))
        else:
            values[slot] = value_of(_partial_of_parts(blobs, raw), operation)
    return values


def _parameters(sql, metric_id, plan, series_ids):
    """The statement's parameters: per source, the metric, its series and its intervals."""
    values = ()
    for source, _ in _SOURCES:
        intervals = getattr(plan, source)
        if intervals:
            values += _source_parameters(sql, metric_id, intervals, series_ids)
    return values


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

    def raw_points(self, metric_id, plan, selection, limit):
        """See ``raw_points``."""
        return raw_points(self.conn, metric_id, plan, selection, limit)


def bucket_values(conn, metric_id, operation, window_seconds, plan, selection=ALL_SERIES):
    """{bucket index (epoch seconds // window): value} over the plan's sources, in one
    statement (a UNION ALL of each source's buckets, added up), of the selected series."""
    if operation in PERCENTILES:
        return _percentile_values(conn, metric_id, operation, window_seconds, plan, selection)
    rows = _rows(conn, metric_id, operation, window_seconds, plan, selection)
    # The bucket's index is named "slot": "bucket" is a column of the rollup tables.
    return {int(row.slot): row_value(row, operation) for row in rows}


def bucket_partials(conn, metric_id, operation, window_seconds, plan, selection=ALL_SERIES):
    """{bucket index: Partial} (the operation's measures) of the selected series added up."""
    if operation in PERCENTILES:
        return _sketch_partials(conn, metric_id, window_seconds, plan, selection)
    rows = _rows(conn, metric_id, operation, window_seconds, plan, selection)
    partial = partial_of(operation)
    return {int(row.slot): partial(row) for row in rows}


def series_buckets(conn, metric_id, operation, window_seconds, plan, series_ids):
    """{series_id: {bucket index: Partial}} of the given series (what grouping merges)."""
    selection = Selection(tuple(series_ids), by_series=True)
    if operation in PERCENTILES:
        found = {}
        for (series_id, slot), partial in _sketch_partials(
            conn, metric_id, window_seconds, plan, selection
        ).items():
            found.setdefault(series_id, {})[slot] = partial
        return found
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
    if operation in PERCENTILES:
        found = None if partial.sketch is None else partial.sketch.quantile(PERCENTILES[operation])
        return None if found is None else json_number(float(found))
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
