"""Bucketed aggregates from ClickHouse: the same calls as ``aggregate.SqlSource`` over the
same plan (raw points for the edges, the minute and hour tiers for whole minutes and hours),
one statement per metric and query — a UNION ALL of each source's buckets, added up.

Sums are exact as on MySQL: each value's shortest decimal (``toString``) summed as
Decimal256(30), the values under 1e-13 summed as doubles beside it. One table holds every
series of a tier (``series_id`` in its sort key): a query of all a metric's series adds them.
"""

from collections import namedtuple

from app.db.aggregate import ALL_SERIES, Selection, partial_of, row_value
from app.db.decimals import TINY

Row = namedtuple("Row", "series_id slot n total residual vmin vmax")

# Each source's measures under names of their own: ClickHouse would read ``sum(n) AS n`` in
# the outer query as a sum of that very alias.
_RAW = (
    "count() AS pn, "
    f"sumIf(toDecimal256(toString(value), 30), abs(value) >= {TINY!r}) AS ptotal, "
    f"sumIf(value, abs(value) < {TINY!r}) AS presidual, "
    "min(value) AS pmin, max(value) AS pmax"
)
_TIER = (
    "sum(n) AS pn, sum(total) AS ptotal, sum(residual) AS presidual, "
    "min(vmin) AS pmin, max(vmax) AS pmax"
)
_MERGED = (
    "sum(pn) AS n, toString(sum(ptotal)) AS total, sum(presidual) AS residual, "
    "min(pmin) AS vmin, max(pmax) AS vmax"
)
# (plan attribute, table, time column, its literal)
_SOURCES = (
    ("raw", "points", "recorded_at", "toDateTime64('{:%Y-%m-%d %H:%M:%S.%f}', 6, 'UTC')"),
    ("minute", "rollups_minute", "bucket", "toDateTime('{:%Y-%m-%d %H:%M:%S}', 'UTC')"),
    ("hour", "rollups_hour", "bucket", "toDateTime('{:%Y-%m-%d %H:%M:%S}', 'UTC')"),
)


def statement(metric_id, window_seconds, plan, selection):
    """The SQL of one metric's buckets over the plan's sources (None: nothing to read). Every
    value in it is a number or a time of ours, written as a literal."""
    keys = "series_id, slot" if selection.by_series else "0 AS series_id, slot"
    series = ""
    if selection.series_ids is not None:
        series = f" AND series_id IN ({', '.join(str(int(s)) for s in selection.series_ids)})"
    parts = []
    for source, table, column, literal in _SOURCES:
        intervals = getattr(plan, source)
        if not intervals:
            continue
        within = " OR ".join(
            f"({column} >= {literal.format(start)} AND {column} < {literal.format(end)})"
            for start, end in intervals
        )
        measures = _RAW if source == "raw" else _TIER
        slot = f"intDiv(toUnixTimestamp({column}), {int(window_seconds)}) AS slot"
        group = "series_id, slot" if selection.by_series else "slot"
        parts.append(
            f"SELECT {'series_id, ' if selection.by_series else ''}{slot}, {measures} "
            f"FROM {table} WHERE metric_id = {int(metric_id)}{series} AND ({within}) "
            f"GROUP BY {group}"
        )
    if not parts:
        return None
    group = "series_id, slot" if selection.by_series else "slot"
    return (
        f"SELECT {keys}, {_MERGED} FROM ({' UNION ALL '.join(parts)}) GROUP BY {group} "
        f"ORDER BY {group}"
    )


class ClickHouseSource:
    """The query layer's calls (``bucket_values``, ``bucket_partials``, ``series_buckets``)
    answered by one ClickHouse client."""

    def __init__(self, client):
        self.client = client

    def _rows(self, metric_id, window_seconds, plan, selection):
        if selection.series_ids == ():
            return []
        sql = statement(metric_id, window_seconds, plan, selection)
        if sql is None:
            return []
        return [Row(*row) for row in self.client.query(sql).result_rows]

    def bucket_values(self, metric_id, operation, window_seconds, plan, selection=ALL_SERIES):
        """{bucket index: value} of the selected series added up."""
        rows = self._rows(metric_id, window_seconds, plan, selection)
        return {row.slot: row_value(row, operation) for row in rows}

    def bucket_partials(self, metric_id, operation, window_seconds, plan, selection=ALL_SERIES):
        """{bucket index: Partial} of the selected series added up."""
        partial = partial_of(operation)
        return {row.slot: partial(row) for row in self._rows(metric_id, window_seconds, plan,
                                                             selection)}  # fmt: skip

    def series_buckets(self, metric_id, operation, window_seconds, plan, series_ids):
        """{series_id: {bucket index: Partial}} of the given series."""
        selection = Selection(tuple(series_ids), by_series=True)
        found, partial = {}, partial_of(operation)
        for row in self._rows(metric_id, window_seconds, plan, selection):
            found.setdefault(row.series_id, {})[row.slot] = partial(row)
        return found
