"""Bucketed aggregates from ClickHouse: the same calls as ``aggregate.SqlSource`` over the
same plan (raw points for the edges, the minute and hour tiers for whole minutes and hours),
one statement per metric and query — a UNION ALL of each source's buckets, added up.

Sums are exact as on MySQL: each value's shortest decimal (``toString``) summed as
Decimal256(30), the values under 1e-13 summed as doubles beside it. One table holds every
series of a tier (``series_id`` in its sort key): a query of all a metric's series adds them.

A percentile reads each slot's sketch from the tiers (their key → count maps, added up by
ClickHouse's ``sumMap``) and the raw points' values, merged here as on the relational engines:
exact while a slot holds raw values alone.
"""

from collections import namedtuple

from app.core.constants import PERCENTILES
from app.core.sketch import Exact, Sketch, combine
from app.db.aggregate import ALL_SERIES, Selection, partial_of, row_value, value_of
from app.db.decimals import TINY
from app.db.rollups import Partial

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
# A source read alone gives the merged columns itself (aliases of their own: see above).
_RAW_ALONE = (
    "count() AS pn, "
    f"toString(sumIf(toDecimal256(toString(value), 30), abs(value) >= {TINY!r})) AS ptotal, "
    f"sumIf(value, abs(value) < {TINY!r}) AS presidual, "
    "min(value) AS pmin, max(value) AS pmax"
)
_TIER_ALONE = (
    "sum(n) AS pn, toString(sum(total)) AS ptotal, sum(residual) AS presidual, "
    "min(vmin) AS pmin, max(vmax) AS pmax"
)
_MERGED = (
    "sum(pn) AS n, toString(sum(ptotal)) AS total, sum(presidual) AS residual, "
    "min(pmin) AS vmin, max(pmax) AS vmax"
)
# (plan attribute, table, time column)
_SOURCES = (
    ("raw", "points", "recorded_at"),
    ("minute", "rollups_minute", "bucket"),
    ("hour", "rollups_hour", "bucket"),
)
_LITERALS = {
    "recorded_at": "toDateTime64('{:%Y-%m-%d %H:%M:%S.%f}', 6, 'UTC')",
    "bucket": "toDateTime('{:%Y-%m-%d %H:%M:%S}', 'UTC')",
}


def _literal(column, moment):
    return _LITERALS[column].format(moment)


def _where(metric_id, column, intervals, selection):
    """One metric's rows (of the selected series) in the intervals. Every value in it is a
    number or a time of ours, written as a literal."""
    series = ""
    if selection.series_ids is not None:
        series = f" AND series_id IN ({', '.join(str(int(s)) for s in selection.series_ids)})"
    within = " OR ".join(
        f"({column} >= {_literal(column, start)} AND {column} < {_literal(column, end)})"
        for start, end in intervals
    )
    return f"metric_id = {int(metric_id)}{series} AND ({within})"


def _selects(metric_id, window_seconds, plan, selection, measures, alone=False):
    """Each source's SELECT of its slots (``measures``: {source: what it selects}, for the
    sources to read); ``alone``: as a whole statement's rows (a series column and order)."""
    group = "series_id, slot" if selection.by_series else "slot"
    head = "series_id, " if selection.by_series else "0 AS sid, " if alone else ""
    order = f" ORDER BY {group}" if alone else ""
    parts = []
    for source, table, column in _SOURCES:
        intervals = getattr(plan, source)
        if not intervals or source not in measures:
            continue
        slot = f"intDiv(toUnixTimestamp({column}), {int(window_seconds)}) AS slot"
        parts.append(
            f"SELECT {head}{slot}, {measures[source]} "
            f"FROM {table} WHERE {_where(metric_id, column, intervals, selection)} "
            f"GROUP BY {group}{order}"
        )
    return parts


def _merged(parts, selection, measures):
    """The SELECT adding up the sources' slots (None when no source is read)."""
    if not parts:
        return None
    keys = "series_id, slot" if selection.by_series else "0 AS series_id, slot"
    group = "series_id, slot" if selection.by_series else "slot"
    return (
        f"SELECT {keys}, {measures} FROM ({' UNION ALL '.join(parts)}) GROUP BY {group} "
        f"ORDER BY {group}"
    )


def statement(metric_id, window_seconds, plan, selection):
    """The SQL of one metric's buckets over the plan's sources (None: nothing to read): one
    source's SELECT as it is (a 30-day hourly query reads the hour tier alone; the outer
    regrouping cost a third of its time), several added up."""
    read = [source for source, _, _ in _SOURCES if getattr(plan, source)]
    if len(read) == 1:
        measures = {"raw": _RAW_ALONE, "minute": _TIER_ALONE, "hour": _TIER_ALONE}
        return _selects(metric_id, window_seconds, plan, selection, measures, alone=True)[0]
    measures = {"raw": _RAW, "minute": _TIER, "hour": _TIER}
    return _merged(_selects(metric_id, window_seconds, plan, selection, measures), selection,
                   _MERGED)  # fmt: skip


def sketch_statements(metric_id, window_seconds, plan, selection):
    """(the tiers' sketches added up per slot, the raw points' values per slot): the SQL of a
    percentile's parts (None where no such source is read)."""
    tiers = {"minute": "sumMap(sketch) AS counts", "hour": "sumMap(sketch) AS counts"}
    raw = {"raw": "groupArray(value) AS values"}
    return (
        _merged(_selects(metric_id, window_seconds, plan, selection, tiers), selection,
                "sumMap(counts)"),
        _merged(_selects(metric_id, window_seconds, plan, selection, raw), selection,
                "groupArrayArray(values)"),
    )  # fmt: skip


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

    def _sketches(self, metric_id, window_seconds, plan, selection):
        """{slot, or (series_id, slot) by series: Partial holding only a ``sketch``}: the
        tiers' sketches (added up by ClickHouse) with the raw points' values, exact while a
        slot has values alone."""
        if selection.series_ids == ():
            return {}
        tiers, raw = sketch_statements(metric_id, window_seconds, plan, selection)
        found = {}
        for sql, made in ((tiers, Sketch), (raw, Exact)):
            for series_id, slot, held in self.client.query(sql).result_rows if sql else ():
                key = (series_id, slot) if selection.by_series else slot
                found[key] = combine(found.get(key), made(dict(held) if made is Sketch else held))
        return {key: Partial(n=sketch.count, sketch=sketch) for key, sketch in found.items()}

    def raw_points(self, metric_id, plan, selection, limit):
        """How many raw points of the selected series the plan reads, up to ``limit`` + 1."""
        if not plan.raw or selection.series_ids == ():
            return 0
        where = _where(metric_id, "recorded_at", plan.raw, selection)
        sql = f"SELECT count() FROM (SELECT 1 FROM points WHERE {where} LIMIT {int(limit) + 1})"
        return self.client.query(sql).result_rows[0][0]

    def bucket_values(self, metric_id, operation, window_seconds, plan, selection=ALL_SERIES):
        """{bucket index: value} of the selected series added up."""
        if operation in PERCENTILES:
            found = self._sketches(metric_id, window_seconds, plan, selection)
            return {slot: value_of(partial, operation) for slot, partial in found.items()}
        rows = self._rows(metric_id, window_seconds, plan, selection)
        return {row.slot: row_value(row, operation) for row in rows}

    def bucket_partials(self, metric_id, operation, window_seconds, plan, selection=ALL_SERIES):
        """{bucket index: Partial} of the selected series added up."""
        if operation in PERCENTILES:
            return self._sketches(metric_id, window_seconds, plan, selection)
        partial = partial_of(operation)
        return {row.slot: partial(row) for row in self._rows(metric_id, window_seconds, plan,
                                                             selection)}  # fmt: skip

    def series_buckets(self, metric_id, operation, window_seconds, plan, series_ids):
        """{series_id: {bucket index: Partial}} of the given series."""
        selection = Selection(tuple(series_ids), by_series=True)
        if operation in PERCENTILES:
            found = {}
            for (series_id, slot), partial in self._sketches(
                metric_id, window_seconds, plan, selection
            ).items():
                found.setdefault(series_id, {})[slot] = partial
            return found
        found, partial = {}, partial_of(operation)
        for row in self._rows(metric_id, window_seconds, plan, selection):
            found.setdefault(row.series_id, {})[row.slot] = partial(row)
        return found
