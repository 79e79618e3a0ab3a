"""Two batch loads measured against one server and database, interleaved (their order
alternating from one repeat to the next), 2 connections each: what the tags and sketch parts
of the ingest benchmark compare."""

from scripts.sync_bench import BATCH_PATH, BATCH_POINTS, WARMUP_SECONDS, post, prepare
from scripts.wrk_runner import run_wrk
from tests.harness import NO_RECYCLING, Gunicorn, drop_database, recreate_database

CONNECTIONS = 2


def measure(mysql_env, args, workdir, server_url, bodies, suffix):
    """{load: [WrkResult…]} of each load in ``bodies`` ({load: body file}, in order), and the
    service's log lines under "service_log"; on a database of its own (``…_<suffix>``)."""
    database = f"{mysql_env['DATABASE_URL'].rsplit('/', 1)[1]}_{suffix}"
    recreate_database(server_url, database)
    server, results = None, {}
    loads = list(bodies)
    try:
        env = {**mysql_env, **NO_RECYCLING, "DATABASE_URL": f"{server_url}/{database}"}
        key, _ = prepare(env["DATABASE_URL"])
        server = Gunicorn(env, log_path=workdir / f"{suffix}.log").start()
        for load in loads:  # makes the metrics (and series) before the timed runs
            status, answer = post(server.port, BATCH_PATH, bodies[load].read_text(), key)
            if status != 201 or answer.get("accepted") != BATCH_POINTS:
                raise RuntimeError(f"{load}: {status} {str(answer)[:300]}")
        url = server.base + BATCH_PATH
        for repeat in range(args.repeats):
            for load in loads if repeat % 2 == 0 else reversed(loads):
                if repeat == 0:
                    run_wrk(url, bodies[load], key, CONNECTIONS, WARMUP_SECONDS)
                result = run_wrk(url, bodies[load], key, CONNECTIONS, args.seconds)
                results.setdefault(load, []).append(result)
    finally:
        if server is not None:
            server.stop()
            results["service_log"] = server.log_lines()
        drop_database(server_url, database)
    return results


def problem_lines(results, part):
    """The service's log lines of a part (it logs at WARNING: any line is worth a look)."""
    log = results.get(part, {}).get("service_log")
    if log:
        return [f"  {part}: the service logged {len(log)} lines, the first: {log[0]}"]
    return []
