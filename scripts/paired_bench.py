"""Two batch loads measured against one server and database, interleaved (their order
alternating from one repeat to the next), 2 connections each: what the tags and sketch parts
of the ingest benchmark compare. ``interleave`` is the loop itself, for loads on several
servers too (the ClickHouse part)."""

from scripts.ingest_report import wrk_row
from scripts.sync_bench import BATCH_PATH, BATCH_POINTS, WARMUP_SECONDS, post, prepare
from scripts.wrk_runner import run_wrk
from tests.harness import NO_RECYCLING, Gunicorn, drop_database, recreate_database

CONNECTIONS = 2


def check_batch(port, body, key, load):
    """One batch sent by hand (wrk counts statuses, not bodies); it also makes the metrics."""
    status, answer = post(port, BATCH_PATH, body, key)
    if status != 201 or answer.get("accepted") != BATCH_POINTS:
        raise RuntimeError(f"{load}: {status} {str(answer)[:300]}")


def interleave(loads, args, connections=CONNECTIONS, results=None):
    """{load: [WrkResult…]} of ``loads`` ({load: (url, body file, key)}, in order), their
    order alternating from one repeat to the next; the first repeat warms each load."""
    results = {} if results is None else results
    names = list(loads)
    for repeat in range(args.repeats):
        for load in names if repeat % 2 == 0 else reversed(names):
            url, body, key = loads[load]
            if repeat == 0:
                run_wrk(url, body, key, connections, WARMUP_SECONDS)
            results.setdefault(load, []).append(run_wrk(url, body, key, connections, args.seconds))
    return results


def measure(mysql_env, args, workdir, server_url, bodies, suffix):
    """{load: [WrkResult…]} of each load in ``bodies`` ({load: body file}, in order), and the
    service's log lines under "service_log"; on a database of its own (``…_<suffix>``)."""
    database = f"{mysql_env['DATABASE_URL'].rsplit('/', 1)[1]}_{suffix}"
    recreate_database(server_url, database)
    server, results = None, {}
    try:
        env = {**mysql_env, **NO_RECYCLING, "DATABASE_URL": f"{server_url}/{database}"}
        key, _ = prepare(env["DATABASE_URL"])
        server = Gunicorn(env, log_path=workdir / f"{suffix}.log").start()
        for load, body in bodies.items():  # makes the metrics (and series) before the runs
            check_batch(server.port, body.read_text(), key, load)
        url = server.base + BATCH_PATH
        loads = {load: (url, body, key) for load, body in bodies.items()}
        interleave(loads, args, results=results)
    finally:
        if server is not None:
            server.stop()
            results["service_log"] = server.log_lines()
        drop_database(server_url, database)
    return results


def section(results, part, heading, plain, other, target):
    """A paired part's rows of the table: (heading, rows); ``plain`` and ``other`` are (load,
    label), ``other`` compared with ``plain`` against ``target``."""
    figures = results.get(part)
    if not figures:
        return f"{part}: not measured", []
    (plain_load, plain_label), (other_load, other_label) = plain, other
    base = wrk_row(plain_label, figures[plain_load], BATCH_POINTS, "pts/s")
    row = wrk_row(other_label, figures[other_load], BATCH_POINTS, "pts/s",
                  ceiling_label=plain_label, ceiling=base.value, target=target)  # fmt: skip
    return heading, [base, row]


def problem_lines(results, part):
    """The service's log lines of a part (it logs at WARNING: any line is worth a look)."""
    log = results.get(part, {}).get("service_log")
    if log:
        return [f"  {part}: the service logged {len(log)} lines, the first: {log[0]}"]
    return []
