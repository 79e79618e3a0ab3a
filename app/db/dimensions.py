"""Filters, group-by and top-N over a metric's series.

A query first settles, from the series catalogue alone (never from points), which series it
reads and how they group: ``prepare``. A selection that keeps every series reads the
per-metric rows (as fast as an unfiltered query); otherwise the per-series rollups and the raw
points of those series answer it. Groups are merged from per-series partial aggregates in
Python, exactly (counts and exact decimal totals add, minima and maxima pick), then ranked
by the operation's total over the whole range; ``top`` keeps the first N and merges the
rest into one "other" group.
"""

from dataclasses import dataclass

from app.core.tags import group_key, order_groups, select
from app.db.aggregate import ALL_SERIES, Selection, value_of
from app.db.rollups import Partial

OTHER = None  # the group key of the "other" group
# Up to this many groups, each is one statement that adds its series up in the database; past
# it, one statement returns each series' buckets and the groups are merged here.
GROUP_STATEMENTS = 64


@dataclass(frozen=True)
class Prepared:
    """One metric of a query: which of its series it reads, and (with group_by) the groups:
    {group key (a tuple of values): [series ids]}."""

    metric: object
    selection: Selection
    groups: dict | None = None

    @property
    def group_count(self):
        """How many groups the answer will hold (1 without group_by)."""
        return 1 if self.groups is None else len(self.groups)


def prepare(metric, catalogue, filters, group_by):
    """The Prepared of ``metric`` whose ``catalogue`` is [(series_id, tags)]."""
    chosen = select(filters, catalogue) if filters else [sid for sid, _ in catalogue]
    everything = len(chosen) == len(catalogue)
    selection = ALL_SERIES if everything else Selection(tuple(chosen))
    if not group_by:
        return Prepared(metric, selection)
    tags_of = dict(catalogue)
    groups = {}
    for series_id in chosen:
        groups.setdefault(group_key(tags_of[series_id], group_by), []).append(series_id)
    return Prepared(metric, selection, groups)


def values(source, prepared, operation, window_seconds, plan, fold=None):
    """{bucket: value} of a metric without group_by (its selected series added up).
    ``fold``: {slot: Partial} of slots of ``window_seconds`` → {bucket: Partial}, when the
    buckets are made of such slots (a time zone's hours and days)."""
    if fold is None:
        return source.bucket_values(prepared.metric.id, operation, window_seconds, plan,
                             prepared.selection)  # fmt: skip
    partials = source.bucket_partials(prepared.metric.id, operation, window_seconds, plan,
                               prepared.selection)  # fmt: skip
    return _values(fold(partials), operation)


def grouped(source, prepared, operation, window_seconds, plan, top=None, fold=None, order=None):
    """[(group key, or OTHER, {bucket: value})] in top-N order (``top``: the first N, then
    one OTHER group holding the rest). ``fold`` as for ``values``; ``order``: the group keys of
    an earlier answer (OTHER last, for the rest), kept instead of ranking these buckets."""
    partials = _group_partials(source, prepared, operation, window_seconds, plan)
    if fold is not None:
        partials = {key: fold(buckets) for key, buckets in partials.items()}
    if order is not None:
        kept = [key for key in order if key is not OTHER]
        rest = [buckets for key, buckets in partials.items() if key not in set(kept)]
        answer = [(key, _values(partials.get(key, {}), operation)) for key in kept]
        if OTHER in order:
            answer.append((OTHER, _values(_merge_groups(rest), operation)))
        return answer
    totals = [(key, value_of(_merged(buckets.values()), operation)) for key, buckets in
              partials.items()]  # fmt: skip
    ranked = [key for key, _ in order_groups(totals, operation)]
    kept = ranked if top is None else ranked[:top]
    answer = [(key, _values(partials[key], operation)) for key in kept]
    if top is not None:
        rest = [partials[key] for key in ranked[top:]]
        answer.append((OTHER, _values(_merge_groups(rest), operation)))
    return answer


def _group_partials(source, prepared, operation, window_seconds, plan):
    """{group key: {bucket: Partial}} of every group."""
    chosen = [series_id for ids in prepared.groups.values() for series_id in ids]
    if len(prepared.groups) == 1 and prepared.selection is ALL_SERIES:
        (key,) = prepared.groups  # one group of every series: the per-metric rows answer it
        metric_id = prepared.metric.id
        return {key: source.bucket_partials(metric_id, operation, window_seconds, plan)}
    if len(prepared.groups) <= GROUP_STATEMENTS:
        # One statement a group, its series added up by the database: a few hundred rows
        # each instead of a row per series and bucket merged here.
        return {
            key: source.bucket_partials(prepared.metric.id, operation, window_seconds, plan,
                                 Selection(tuple(ids)))
            for key, ids in prepared.groups.items()
        }  # fmt: skip
    per_series = source.series_buckets(prepared.metric.id, operation, window_seconds, plan,
                                chosen) if chosen else {}  # fmt: skip
    return {
        key: _merge_groups(per_series.get(series_id, {}) for series_id in ids)
        for key, ids in prepared.groups.items()
    }


def _merged(partials):
    """One Partial of several."""
    total = Partial()
    for partial in partials:
        total.merge(partial)
    return total


def _merge_groups(groups):
    """{bucket: Partial} of several {bucket: Partial}, added up bucket by bucket."""
    merged = {}
    for buckets in groups:
        for bucket, partial in buckets.items():
            merged.setdefault(bucket, Partial()).merge(partial)
    return merged


def _values(buckets, operation):
    """{bucket: value} of merged Partials (a bucket with no points left out)."""
    return {bucket: value_of(partial, operation) for bucket, partial in buckets.items()}
