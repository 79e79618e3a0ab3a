"""Queue mode (``INGEST_MODE=queue``) in the ingest benchmark, on MariaDB with a private
durable Redis (appendfsync always), beside ceilings measured in the same run, interleaved:

- 202s of single counters at 16 connections with no worker running, beside the synchronous
  service's single counters at 16 connections (target ≥ 1.5×);
- the drain of a buffer of 200,000 single-point entries (the 202s above, topped up with the
  door's own append) by the QUEUE_DRAINERS ingest workers ``make worker`` starts, from the
  first drained point to the last (and with the workers' start-up), beside the 2-connection
  executemany ceiling (target ≥ 0.6×);
- then once: batches of 100 points at 80 % of the median drain rate for 60 s with the workers
  running, the lag (the oldest buffered entry's age) sampled every 100 ms (target p99 ≤ 2 s),
  and the same at 40 %.
"""

import json
import os
import statistics

from sqlalchemy import text

from app import config
from app.db import create_engine_for
from scripts import queue_load
from scripts.executemany_ceiling import Ceiling
from scripts.ingest_report import Row, Target, error_lines, wrk_row
from scripts.sync_bench import BATCH_PATH, SINGLE_PATH, WARMUP_SECONDS, post, prepare
from scripts.wrk_runner import run_wrk
from tests.harness import NO_RECYCLING, Gunicorn, RedisServer

CONNECTIONS = 16
BUFFER_ENTRIES = 200_000
NAMES = [f"bench.queue.{i:02d}" for i in range(48)]
# Shares of the drain rate: the target's 80 %, and half that (where the machine has room).
STEADY_SHARES = (0.8, 0.4)
STEADY_POINTS = 100
DRAIN_TIMEOUT_SECONDS = 600
ACCEPT_TARGET = Target(1.5)
DRAIN_TARGET = Target(0.6)
STEADY_TARGET = Target(0.75, max_p99_ms=2000)  # the load reached; the lag's p99
NOT_AVAILABLE = "queue mode: not measured"
_COUNT_POINTS = text(
    "SELECT COUNT(*) FROM metric_points p JOIN metrics m ON m.id = p.metric_id "
    "WHERE m.name LIKE 'bench.queue.%'"
)


def steady_body():
    """One batch of STEADY_POINTS counters over as many names (recorded now)."""
    items = [{"name": f"bench.steady.{i:03d}", "type": "counter", "value": i}
             for i in range(STEADY_POINTS)]  # fmt: skip
    return json.dumps({"metrics": items})


def measure(mysql_env, bodies, args, workdir):
    """{"status", "sync", "accepted", "ceiling", "drain", "steady", ...} on MariaDB; a status
    alone when the run failed."""
    workdir.mkdir(parents=True, exist_ok=True)
    durable = RedisServer(workdir / "redis")
    queue_env = {**mysql_env, "REDIS_URL": durable.url, "INGEST_MODE": "queue"}
    queue_env["LOG_LEVEL"] = "WARNING"  # the workers' log: any line is worth a look
    servers, ceiling = {}, None
    try:
        durable.start()
        key, _ = prepare(mysql_env["DATABASE_URL"])
        for mode, env in (("queue", queue_env), ("sync", {**mysql_env, "INGEST_MODE": "sync"})):
            log = workdir / f"{mode}.log"
            servers[mode] = Gunicorn({**env, **NO_RECYCLING}, log_path=log).start()
        ceiling = Ceiling(mysql_env["DATABASE_URL"], 2)
        runs = QueueRuns(servers, ceiling, {**os.environ, **queue_env}, bodies, key, workdir)
        runs.run(args.repeats, args.seconds, args.steady_seconds)
        return {"status": "measured", **runs.results()}
    except RuntimeError as exc:
        return {"status": f"queue mode: FAILED: {exc}"}
    finally:
        if ceiling:
            ceiling.close()
        for server in servers.values():
            server.stop()
        durable.stop()


class QueueRuns:
    """Interleaved repeats of the ceiling, the sync and queued single points and a drain."""

    def __init__(self, servers, ceiling, env, bodies, key, workdir):
        self.servers, self.ceiling, self.env = servers, ceiling, env
        self.bodies, self.key, self.workdir = bodies, key, workdir
        self.settings = config.load(env)
        self.engine = create_engine_for(self.settings["DATABASE_URL"])
        self.figures = {"ceiling": [], "sync": [], "accepted": [], "drain": [], "memory": []}
        self.steady = None

    def run(self, repeats, seconds, steady_seconds):
        """A checked request, then ``repeats`` interleaved runs, then the steady load."""
        first = self.bodies.read_text().splitlines()[0]
        status, answer = post(self.servers["queue"].port, SINGLE_PATH, first, self.key)
        if status != 202:
            raise RuntimeError(f"a single point in queue mode answered {status}: {answer}")
        for repeat in range(repeats):
            self.once(seconds, warm=repeat == 0)
        status, answer = post(self.servers["queue"].port, BATCH_PATH, steady_body(), self.key)
        if status != 202:  # this also creates the steady load's metrics before it starts
            raise RuntimeError(f"a batch in queue mode answered {status}: {answer}")
        drain_rate = statistics.median(d.rate for d in self.figures["drain"])
        with open(self.workdir / "steady-workers.log", "ab") as log:
            self.steady = [
                queue_load.steady(
                    self.env, self.settings, self.servers["queue"], steady_body(),
                    STEADY_POINTS, self.key, share * drain_rate, steady_seconds, log,
                )
                for share in STEADY_SHARES
            ]  # fmt: skip

    def once(self, seconds, warm):
        """One run of each figure."""
        self.figures["ceiling"].append(self.ceiling.measure(2, seconds))
        for mode, figure in (("sync", "sync"), ("queue", "accepted")):
            url = self.servers[mode].base + SINGLE_PATH
            if warm:
                run_wrk(url, self.bodies, self.key, CONNECTIONS, WARMUP_SECONDS)
            self.figures[figure].append(run_wrk(url, self.bodies, self.key, CONNECTIONS, seconds))
        self.figures["memory"].append(queue_load.fill(self.settings, NAMES, BUFFER_ENTRIES))
        self.figures["drain"].append(self._drain())

    def _drain(self):
        before = self._stored()
        buffered = queue_load.buffer_points(self.settings)
        with open(self.workdir / "workers.log", "ab") as log:
            result = queue_load.drain(self.env, self.settings, log, DRAIN_TIMEOUT_SECONDS)
        result.missing = buffered - (self._stored() - before)  # lost (> 0) or doubled (< 0)
        return result

    def _stored(self):
        with self.engine.connect() as conn:
            return conn.execute(_COUNT_POINTS).scalar()

    def results(self):
        """The figures, the steady load and the workers' log."""
        self.engine.dispose()
        logs = [self.workdir / name for name in ("workers.log", "steady-workers.log")]
        lines = [line for path in logs if path.exists() for line in path.read_text().splitlines()]
        service_log = self.servers["queue"].errors().splitlines()
        drainers = self.settings["QUEUE_DRAINERS"]
        return {**self.figures, "steady": self.steady, "worker_log": lines,
                "service_log": service_log, "drainers": drainers}  # fmt: skip


def section(results):
    """The queue part of the table: (heading, rows)."""
    queue = results.get("queue", {"status": NOT_AVAILABLE})
    if queue["status"] != "measured":
        return queue["status"], []
    drains, steady = queue["drain"], queue["steady"]
    ceiling = statistics.median(queue["ceiling"])
    sync_single = wrk_row("", queue["sync"]).value
    drain_rate = statistics.median(d.rate for d in drains)
    memory = statistics.median(queue["memory"])
    heading = (
        f"queue mode on MariaDB, durable Redis (appendfsync always); drain of "
        f"{BUFFER_ENTRIES:,} single-point entries by {queue['drainers']} ingest workers; "
        f"~{memory:.0f} bytes of Redis a point;\n  steady: batches of {STEADY_POINTS} at a share "
        f"of the drain rate, lag sampled every 100 ms (p50/p95/p99 in ms)"
    )
    return heading, [
        Row("executemany, 2 conn.", ceiling, "rows/s"),
        wrk_row(f"sync single, {CONNECTIONS} conn.", queue["sync"]),
        wrk_row(f"202 accepted, {CONNECTIONS} conn.", queue["accepted"],
                ceiling_label=f"sync single {CONNECTIONS}", ceiling=sync_single,
                target=ACCEPT_TARGET),
        Row("drain, first to last", drain_rate, "pts/s", ceiling_label="executemany 2 conn.",
            ceiling=ceiling, target=DRAIN_TARGET, errors=sum(abs(d.missing) for d in drains)),
        Row("drain, with start-up", statistics.median(d.rate_with_startup for d in drains),
            "pts/s", ceiling_label="executemany 2 conn.", ceiling=ceiling),
    ] + [steady_row(run, share, drain_rate)
         for run, share in zip(steady, STEADY_SHARES, strict=True)]  # fmt: skip


def steady_row(run, share, drain_rate):
    """A steady load's row: points accepted beside the drain rate, the lag in the latency
    columns; the target on the 80 % load."""
    lag = (run.lag_p50 * 1000, run.lag_p95 * 1000, run.lag_p99 * 1000)
    return Row(f"steady {share:.0%}, lag", run.points_per_second_accepted, "pts/s", lag,
               ceiling_label="drain rate", ceiling=drain_rate,
               target=STEADY_TARGET if share == STEADY_SHARES[0] else None,
               errors=sum(n for code, n in run.statuses.items() if code != 202))  # fmt: skip


def problem_lines(results):
    """What went wrong in queue mode, one line each (nothing when it was not measured)."""
    queue = results.get("queue", {"status": NOT_AVAILABLE})
    if queue["status"] == NOT_AVAILABLE:
        return []
    if queue["status"] != "measured":
        return [f"  {queue['status']}"]
    lines = error_lines([("queue sync single", queue["sync"]),
                         ("queue 202 accepted", queue["accepted"])])  # fmt: skip
    for drain in queue["drain"]:
        if drain.missing:
            lines.append(f"  queue drain: {drain.missing} points buffered but not stored once")
    for run in queue["steady"]:
        refused = {code: n for code, n in run.statuses.items() if code != 202}
        if refused:
            lines.append(f"  queue steady load: non-202 answers {refused}")
    for label in ("worker_log", "service_log"):
        if queue[label]:
            found = queue[label]
            lines.append(f"  queue {label}: {len(found)} lines, the first: {found[0]}")
    return lines
