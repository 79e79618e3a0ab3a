"""Points → the database: one metric resolution and one ``executemany`` per transaction.

Every write goes through here. ``write_requests`` is the transaction itself — several
requests' points, their idempotency receipts and their answers, committed together — which
the store runs for the group-commit thread of each process and for the queue's drains alike.
"""

from collections import Counter
from dataclasses import replace

from app.core.writes import WriteResult, follow, replay
from app.db import dialects, metrics, receipts
from app.db import rollups as rollup_rows
from app.db.schema import metric_points

_INSERT_POINTS = metric_points.insert()


def storage_options(config):
    """(keep the rollups, keep the raw points, the most metrics) under a deployment's settings:
    METRICS_ROLLUPS, raw points unless METRICS_RETENTION_DAYS=0 (rollups only), and
    METRICS_MAX_METRICS. The group writer and the queue's workers pass them to
    ``write_requests`` alike."""
    return (
        config["METRICS_ROLLUPS"],
        config["METRICS_RETENTION_DAYS"] > 0,
        config["METRICS_MAX_METRICS"],
    )


def write_requests(conn, requests, now, rollups=True, keep_raw=True, max_metrics=None):
    """Apply several requests in one transaction; returns each one's Answer (or CONFLICT).
    ``rollups``: keep the minute and hour rollups of the points in the same transaction;
    ``keep_raw`` False (METRICS_RETENTION_DAYS=0) keeps the rollups alone; ``max_metrics``
    (METRICS_MAX_METRICS): new metrics past it are refused."""
    answers, fresh, followers, recorded = _settle_receipts(conn, requests, now)
    wanted = {}
    for index in fresh:
        for point in requests[index].points:
            wanted.setdefault(point.name, point.type)
    resolved = metrics.resolve(conn, wanted, now, max_metrics) if wanted else {}
    rows = []
    for index in fresh:
        points = requests[index].points
        result = _split(points, resolved, rows)
        stored = Counter(points[position].type for position in result.written)
        answers[index] = replace(requests[index].respond(result), stored=stored)
    if rows:
        if keep_raw:
            conn.execute(_INSERT_POINTS, rows)
        if rollups:
            summaries = rollup_rows.summarize(rows, exact_all=dialects.of(conn).EXACT_ALL)
            rollup_rows.upsert(conn, summaries)
    receipts.record_answers(
        conn,
        [
            (requests[i].receipt, answers[i].status, answers[i].text())
            for i in fresh
            if requests[i].receipt and requests[i].receipt.remember_answer
        ],
    )
    for index, leader in followers.items():
        earlier = recorded.get(requests[leader].receipt.ident)
        if earlier is not None:  # the key was applied before this group
            answers[index] = replay(requests[index].receipt, earlier)
        else:
            answers[index] = follow(requests[index], requests[leader], answers[leader])
    return answers


def _split(points, resolved, rows):
    """Add the points that fit their metric's type to ``rows``; the WriteResult of a request."""
    result = WriteResult()
    for position, point in enumerate(points):
        metric = resolved.get(point.name)
        if metric is None:
            result.limited.append(position)
            continue
        if metric.type != point.type:
            result.mismatched.append((position, metric))
            continue
        result.written.append(position)
        rows.append(
            {"metric_id": metric.id, "recorded_at": point.recorded_at, "value": point.value}
        )
    return result


def _settle_receipts(conn, requests, now):
    """Claim the receipts: answers already known, the requests to apply, and the followers
    (a second request with a key already in this group, answered like its leader)."""
    answers = [None] * len(requests)
    leaders, followers = {}, {}
    for index, request in enumerate(requests):
        if request.receipt is None:
            continue
        ident = request.receipt.ident
        if ident in leaders:
            followers[index] = leaders[ident]
        else:
            leaders[ident] = index
    claimed = receipts.claim(conn, [requests[i].receipt for i in leaders.values()], now)
    recorded = {ident: row for ident, row in claimed.items() if row is not None}
    for ident, row in recorded.items():
        index = leaders[ident]
        answers[index] = replay(requests[index].receipt, row)
    fresh = [i for i in range(len(requests)) if answers[i] is None and i not in followers]
    return answers, fresh, followers, recorded


def recorded_answer(conn, receipt, now):
    """The answer an earlier request with this receipt's key got (or CONFLICT), or None."""
    recorded = receipts.find(conn, receipt, now)
    return None if recorded is None else replay(receipt, recorded)
