"""The executemany ceiling: how many rows a second the database takes when nothing but a
loop feeds it — batches of 1,000 rows into a copy of ``metric_points`` through the app's own
engine options and the same SQLAlchemy ``insert()`` the writer uses, one COMMIT per batch,
from one or several processes at once (processes, so the client's GIL is not the limit)."""

import multiprocessing
import random
import signal
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta

from sqlalchemy import MetaData, text

from app.core.timeutil import utcnow
from app.db import create_engine_for
from app.db.schema import metric_points

TABLE = "metric_points_ceiling"
BATCH_ROWS = 1000
METRIC_IDS = 100
# Time for the spawned processes to connect before the common start.
START_SLACK_SECONDS = 1.0

ceiling_points = metric_points.to_metadata(MetaData(), name=TABLE)


_SQLITE_DDL = text(
    "SELECT sql FROM sqlite_master WHERE tbl_name = 'metric_points' AND sql IS NOT NULL"
)


def create_table(engine):
    """Create the empty copy of ``metric_points`` (partitions and indexes included)."""
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {TABLE}"))
        if engine.dialect.name != "sqlite":
            conn.execute(text(f"CREATE TABLE {TABLE} LIKE metric_points"))
            return
        # SQLite has no CREATE TABLE … LIKE: replay the table's and its index's DDL, renamed.
        for statement in conn.execute(_SQLITE_DDL).scalars().all():
            conn.execute(text(statement.replace("metric_points", TABLE)))


def batch_rows(rng):
    """1,000 rows over 100 metrics, recorded in the last minute, as the writer passes them."""
    now = utcnow()
    return [
        {
            "metric_id": 1 + i % METRIC_IDS,
            "recorded_at": now - timedelta(milliseconds=rng.randrange(60_000)),
            "value": rng.uniform(0, 1000),
        }
        for i in range(BATCH_ROWS)
    ]


def insert_for(url, seconds, start_at, seed):
    """In a worker process: commit batches until ``seconds`` have passed from the wall-clock
    time ``start_at``; returns (rows committed, seconds taken)."""
    engine = create_engine_for(url)
    rng = random.Random(seed)
    rows = 0
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))  # connect before the clock starts
            conn.commit()
            time.sleep(max(0.0, start_at - time.time()))
            began = time.perf_counter()
            while time.perf_counter() - began < seconds:
                conn.execute(ceiling_points.insert(), batch_rows(rng))
                conn.commit()
                rows += BATCH_ROWS
            return rows, time.perf_counter() - began
    finally:
        engine.dispose()


def _ignore_interrupts():
    """Worker processes leave Ctrl-C to the parent, which shuts them down."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _ready(seconds):
    """A task that holds its worker process for a moment, so the pool starts them all."""
    time.sleep(seconds)


class Ceiling:
    """A pool of worker processes measuring the ceiling of one database, repeatedly."""

    def __init__(self, url, max_connections=2):
        self.url = url
        context = multiprocessing.get_context("spawn")
        self.pool = ProcessPoolExecutor(
            max_workers=max_connections, mp_context=context, initializer=_ignore_interrupts
        )
        # The pool spawns a process only when none is idle: start them all now, not mid-run.
        for future in [self.pool.submit(_ready, 0.5) for _ in range(max_connections)]:
            future.result()
        self.runs = 0

    def measure(self, connections, seconds):
        """Rows per second committed by ``connections`` processes in parallel."""
        start_at = time.time() + START_SLACK_SECONDS
        self.runs += 1
        futures = [
            self.pool.submit(insert_for, self.url, seconds, start_at, self.runs * 100 + slot)
            for slot in range(connections)
        ]
        results = [future.result() for future in futures]
        return sum(rows / elapsed for rows, elapsed in results)

    def close(self):
        """Stop the worker processes."""
        self.pool.shutdown(cancel_futures=True)
