"""The record of maintenance jobs: last start, last success and its result, last error.
Functions take a connection and never commit; a job holds its named lock while it writes."""

import json

from sqlalchemy import select, update

from app.db.schema import maintenance_runs


def _save(conn, job, **values):
    changed = conn.execute(
        update(maintenance_runs).where(maintenance_runs.c.job == job).values(**values)
    ).rowcount
    if not changed:
        conn.execute(maintenance_runs.insert().values(job=job, **values))


def started(conn, job, now):
    """A run of ``job`` began."""
    _save(conn, job, last_started_at=now)


def succeeded(conn, job, now, result):
    """A run of ``job`` finished; ``result`` is what it reports (JSON-able)."""
    _save(conn, job, last_success_at=now, last_result=json.dumps(result), last_error=None)


def failed(conn, job, error):
    """A run of ``job`` failed with ``error`` (text)."""
    _save(conn, job, last_error=error[:2000])


def last_runs(conn):
    """{job: {"last_started_at", "last_success_at", "last_result" (parsed), "last_error"}}."""
    runs = {}
    for row in conn.execute(select(maintenance_runs)):
        runs[row.job] = {
            "last_started_at": row.last_started_at,
            "last_success_at": row.last_success_at,
            "last_result": json.loads(row.last_result) if row.last_result else None,
            "last_error": row.last_error,
        }
    return runs
