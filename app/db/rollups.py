"""Rollups: for every (metric, minute) and (metric, hour) with points, their count, exact sum,
minimum and maximum, so a query over whole minutes or hours reads a row each instead of every
point.

The writer merges a transaction's points per (metric, minute) and (metric, hour) in Python
(``summarize``) and upserts each merged row once, in the same transaction as the points
(``upsert``): a 201 means the rollups hold the point too, and concurrent writers to the same
minute add to the row under its lock, never losing an update. Rows are upserted in key order,
so two writers never deadlock on them.

Value metrics' rows also keep a percentile sketch (``app/core/sketch.py``): counts per
logarithmic bucket, which merge by adding; counters keep NULL. SQLite merges the upsert's
sketch into the row's as it writes it (a registered function). MySQL cannot add two sketches,
but it can append one to another: the upsert appends the transaction's sketch to the row's as
one more frame — no read, no extra statement — and readers merge a row's frames. So that rows
do not grow without end, each process counts the frames it has appended to each row, and a
transaction that touches enough rows with COMPACT_APPENDS of them (or one with many frames or
bytes) reads those rows' sketches under the lock its upsert took and writes each back as one
frame (``_compact``): a row holds at most about COMPACT_LIMIT frames a writing process.

Exactness is the raw query's: the sum adds each value's shortest decimal exactly. On MySQL,
values with |v| < 1e-13 (past DECIMAL(65,30)'s places) are summed as doubles in ``residual``,
as the raw query does; on SQLite the decimal text holds every value. Functions take a
connection and never commit.
"""

import functools
import math
import threading
from dataclasses import dataclass
from decimal import Decimal, localcontext

from cachetools import LRUCache
from sqlalchemy import bindparam, delete, select, text, tuple_, update

from app.core.constants import HOUR, MINUTE
from app.core.sketch import Sketch, combine, compact
from app.db import dialects
from app.db.decimals import EXACT, TINY
from app.db.schema import (
    metric_points,
    metric_rollups_hour,
    metric_rollups_minute,
    rollup_state,
    series_rollups_hour,
    series_rollups_minute,
)

TABLES = {MINUTE: metric_rollups_minute, HOUR: metric_rollups_hour}
SERIES_TABLES = {MINUTE: series_rollups_minute, HOUR: series_rollups_hour}


@dataclass
class Partial:
    """An aggregate of some points that merges with others: count, exact sum, min, max, and
    (of a value metric's points) their ``sketch``: a Sketch, or an Exact of raw values."""

    n: int = 0
    total: Decimal = Decimal(0)
    residual: float = 0.0
    vmin: float | None = None
    vmax: float | None = None
    sketch: object = None

    @classmethod
    def of(cls, values, exact_all, sketched=False):
        """The aggregate of some values (``exact_all``: every value into the decimal total;
        else those with |v| < TINY go to the double ``residual``, in order; ``sketched``: with
        their sketch)."""
        exact, tiny = values, ()
        if not exact_all and min(map(abs, values)) < TINY:
            exact = [value for value in values if abs(value) >= TINY]
            tiny = [value for value in values if abs(value) < TINY]
        with localcontext(EXACT):  # each value's shortest decimal, added exactly, in order
            total = sum(map(Decimal, map(repr, exact)), Decimal(0))
        sketch = Sketch.of(values) if sketched else None
        return cls(len(values), total, float(sum(tiny)), min(values), max(values), sketch)

    def agrees(self, other):
        """The same aggregate: all exact but the double ``residual`` (rounding in another
        order), which may differ by a few ulps."""
        if other is None:
            return False
        exact = (self.n, self.total, self.vmin, self.vmax, self.sketch) == (
            other.n,
            other.total,
            other.vmin,
            other.vmax,
            other.sketch,
        )
        return exact and math.isclose(self.residual, other.residual, rel_tol=1e-12, abs_tol=1e-300)

    def merge(self, other):
        """Add another Partial's points to this one."""
        self.n += other.n
        self.total = EXACT.add(self.total, other.total)
        self.residual += other.residual
        for name, pick in (("vmin", min), ("vmax", max)):
            mine, theirs = getattr(self, name), getattr(other, name)
            setattr(
                self,
                name,
                theirs if mine is None else mine if theirs is None else pick(mine, theirs),
            )
        self.sketch = combine(self.sketch, other.sketch)


def summarize(rows, exact_all, per_series=False, sketched=frozenset()):
    """{tier: {(metric_id, bucket start): Partial}} of point rows
    (``{"metric_id", "series_id", "recorded_at", "value"}``); with ``per_series`` the keys are
    (metric_id, series_id, bucket start). The metrics in ``sketched`` (ids) get sketches. A
    naive UTC minute or hour starts where its seconds (and minutes) are zero, a multiple of 60
    (3,600) seconds from the epoch."""
    by_minute = {}
    for row in rows:
        minute = row["recorded_at"].replace(second=0, microsecond=0)
        key = (row["metric_id"], row["series_id"], minute) if per_series else (
            row["metric_id"], minute)  # fmt: skip
        values = by_minute.get(key)
        if values is None:
            by_minute[key] = [row["value"]]
        else:
            values.append(row["value"])
    summaries = {MINUTE: {}, HOUR: {}}
    for key, values in by_minute.items():
        partial = summaries[MINUTE][key] = Partial.of(values, exact_all, key[0] in sketched)
        hour_key = (*key[:-1], key[-1].replace(minute=0))
        summaries[HOUR].setdefault(hour_key, Partial()).merge(partial)
    return summaries


def _row(columns, key, partial):
    row = dict(zip(columns, key, strict=False))
    row.update(
        n=partial.n,
        total=str(partial.total),
        residual=partial.residual,
        vmin=partial.vmin,
        vmax=partial.vmax,
        sketch=None if partial.sketch is None else partial.sketch.encode(),
    )
    return row


_MEASURES = ("n", "total", "residual", "vmin", "vmax", "sketch")
_KEYS = {False: ("metric_id", "bucket"), True: ("metric_id", "series_id", "bucket")}


def _upsert_statement(conn, tier, per_series):
    """The dialect's rollup upsert for one tier (it adds to an existing row)."""
    table = (SERIES_TABLES if per_series else TABLES)[tier]
    columns = _KEYS[per_series] + _MEASURES
    return _typed(dialects.of(conn).rollup_upsert(table, columns, conn.dialect), table, columns)


@functools.lru_cache(maxsize=16)
def _typed(sql_text, table, columns):
    """The upsert as typed text, built once (SQLAlchemy's dialect inserts with these clauses
    are compiled anew on every execution; this runs in every ingest transaction)."""
    binds = [bindparam(column, type_=table.c[column].type) for column in columns]
    return text(sql_text).bindparams(*binds)


def upsert(conn, summaries, per_series=False):
    """Add the summarized points to the rollup rows (per metric, or ``per_series``), in key
    order, so two writers never deadlock on them; then compact the sketches that are due."""
    for tier, partials in summaries.items():
        if partials:
            columns = _KEYS[per_series]
            rows = [_row(columns, key, partial) for key, partial in sorted(partials.items())]
            conn.execute(_upsert_statement(conn, tier, per_series), rows)
            if not dialects.of(conn).SKETCH_FRAMES_BOUNDED:
                table = (SERIES_TABLES if per_series else TABLES)[tier]
                appended = [(tuple(row[c] for c in columns), len(row["sketch"]))
                            for row in rows if row["sketch"] is not None]  # fmt: skip
                due = APPENDS.due(table.name, appended)
                if due:
                    _compact(conn, table, columns, due)
                    APPENDS.forget(table.name, due)


# A row is due for compaction after this many frames from one process; a transaction compacts
# its due rows once it has COMPACT_TOGETHER of them (one read and one write for them all), or
# any of its rows has COMPACT_LIMIT frames or COMPACT_BYTES bytes from this process.
COMPACT_APPENDS = 32
COMPACT_TOGETHER = 16
COMPACT_LIMIT = 128
COMPACT_BYTES = 256 * 1024


class Appends:
    """This process's frames appended to rows' sketches since it last compacted them."""

    def __init__(self, rows=200_000):
        self._lock = threading.Lock()
        self._rows = LRUCache(maxsize=rows)  # (table, key) → (frames, bytes)

    def due(self, table, appended):
        """Count [(row key, frame bytes)] appended to ``table``; the keys (in order) of those
        rows to compact now, or []."""
        due, urgent = [], False
        with self._lock:
            for key, size in appended:
                frames, total = self._rows.get((table, key), (0, 0))
                frames, total = frames + 1, total + size
                self._rows[table, key] = (frames, total)
                if frames >= COMPACT_APPENDS or total >= COMPACT_BYTES:
                    due.append(key)
                    urgent = urgent or frames >= COMPACT_LIMIT or total >= COMPACT_BYTES
        return due if urgent or len(due) >= COMPACT_TOGETHER else []

    def forget(self, table, keys):
        """The rows were compacted: count their frames from zero."""
        with self._lock:
            for key in keys:
                self._rows.pop((table, key), None)


APPENDS = Appends()


def _compact(conn, table, columns, keys):
    """Write each row's sketch back as one frame. The upsert before has locked every one of
    these rows, so the locking read sees each one's last committed sketch (in key order), and
    nobody appends to it until this transaction ends."""
    key_columns = [table.c[column] for column in columns]
    query = (
        select(*key_columns, table.c.sketch)
        .where(tuple_(*key_columns).in_(keys))
        .order_by(*key_columns)
        .with_for_update()
    )
    rows = []
    for row in conn.execute(query):
        if row.sketch is None:
            continue
        single = compact(row.sketch)
        if single is not row.sketch:
            rows.append({**dict(zip(columns, row[:-1], strict=True)), "sketch": single})
    if rows:
        sql_text = dialects.of(conn).sketch_update(table, columns, conn.dialect)
        conn.execute(_typed(sql_text, table, (*columns, "sketch")), rows)


def complete_from(conn, sketches=False):
    """{tier: the start of the range each tier is complete for, or None (nowhere)} — of its
    sketches (``sketches``): a tier's rows made before sketches existed have none."""
    column = rollup_state.c.sketches_from if sketches else rollup_state.c.complete_from
    found = dict(conn.execute(select(rollup_state.c.tier, column)).all())
    return {tier: found.get(tier) for tier in TABLES}


def set_complete_from(conn, tier, moment, sketches=False):
    """Record that ``tier`` (its sketches) is complete from ``moment`` (None: nowhere)."""
    column = "sketches_from" if sketches else "complete_from"
    conn.execute(update(rollup_state).where(rollup_state.c.tier == tier).values({column: moment}))


def disown(conn):
    """Rollups are off for this writer: no tier is complete anywhere any more."""
    conn.execute(update(rollup_state).values(complete_from=None, sketches_from=None))


def tier_tables(tier):
    """A tier's tables: the per-metric rows and the per-series ones."""
    return TABLES[tier], SERIES_TABLES[tier]


def delete_chunk(conn, table, metric_id, before, chunk):
    """Delete up to ``chunk`` of a metric's rows of a rollup ``table`` before ``before``
    (None: all)."""
    sql = dialects.of(conn)
    statement = sql.delete_oldest(table, "metric_id", "bucket", before is not None)
    params = {"key": metric_id, "chunk": chunk}
    if before is not None:
        params["before"] = sql.bind_moment(before)
    return conn.execute(statement, params).rowcount


def metrics_with_rows_before(conn, table, before):
    """Ids of the metrics with rows of a rollup ``table`` before ``before``."""
    query = select(table.c.metric_id).where(table.c.bucket < before).distinct()
    return sorted(conn.scalars(query))


def raw_summaries(conn, metric_id, start, end, per_series=False, sketched=False):
    """The rollups ``summarize`` makes of a metric's stored points in [start, end) (with
    sketches for a value metric: ``sketched``)."""
    columns = (metric_points.c.recorded_at, metric_points.c.value, metric_points.c.series_id)
    query = select(*columns).where(
        metric_points.c.metric_id == metric_id,
        metric_points.c.recorded_at >= start,
        metric_points.c.recorded_at < end,
    )
    rows = (
        {"metric_id": metric_id, "recorded_at": t, "value": v, "series_id": s}
        for t, v, s in conn.execute(query)
    )
    exact_all = dialects.of(conn).EXACT_ALL
    ids = frozenset((metric_id,)) if sketched else frozenset()
    return summarize(rows, exact_all=exact_all, per_series=per_series, sketched=ids)


def _tables(per_series):
    return (SERIES_TABLES if per_series else TABLES).values()


def stored(conn, tier, metric_id, start, end, per_series=False):
    """{(metric_id[, series_id], bucket): Partial} of a metric's rows of ``tier`` in
    [start, end)."""
    table = (SERIES_TABLES if per_series else TABLES)[tier]
    query = select(table).where(
        table.c.metric_id == metric_id, table.c.bucket >= start, table.c.bucket < end
    )
    found = {}
    for row in conn.execute(query):
        key = (row.metric_id, row.series_id, row.bucket) if per_series else (
            row.metric_id, row.bucket)  # fmt: skip
        sketch = None if row.sketch is None else Sketch.decode(row.sketch)
        found[key] = Partial(row.n, Decimal(row.total), row.residual, row.vmin, row.vmax, sketch)
    return found


def rebuild(conn, metric_id, start, end, tagged=False, sketched=False):
    """Replace a metric's rollup rows in [start, end) (whole hours) — its per-series rows too
    when it is ``tagged``, with sketches when ``sketched`` — with what its raw points give.
    The rows are locked first, so a writer adding to them waits, and adds its points after
    this transaction, to the rebuilt rows: nothing is lost or counted twice (on MySQL the
    transaction must be REPEATABLE READ, so the lock covers the gaps)."""
    kinds = (False, True) if tagged else (False,)
    tables = [table for per_series in kinds for table in _tables(per_series)]
    for table in tables:
        conn.execute(
            select(table.c.bucket)
            .where(table.c.metric_id == metric_id, table.c.bucket >= start, table.c.bucket < end)
            .with_for_update()
        ).all()
    for table in tables:
        conn.execute(
            delete(table).where(
                table.c.metric_id == metric_id, table.c.bucket >= start, table.c.bucket < end
            )
        )
    points = 0
    for per_series in kinds:
        summaries = raw_summaries(conn, metric_id, start, end, per_series, sketched)
        upsert(conn, summaries, per_series)
        points = sum(p.n for p in summaries[MINUTE].values())
    return points


def differences(conn, metric_id, start, end, tagged=False, sketched=False):
    """[(tier, bucket, stored Partial or None, raw Partial or None)] where they disagree (the
    tier named ``series minute`` / ``series hour`` for the per-series rows of a tagged one)."""
    found = []
    for per_series in (False, True) if tagged else (False,):
        expected = raw_summaries(conn, metric_id, start, end, per_series, sketched)
        for tier in TABLES:
            have = stored(conn, tier, metric_id, start, end, per_series)
            label = f"series {tier}" if per_series else tier
            for key in sorted(set(have) | set(expected[tier])):
                mine = have.get(key)
                if mine is None or not mine.agrees(expected[tier].get(key)):
                    found.append((label, key[-1], mine, expected[tier].get(key)))
    return found
