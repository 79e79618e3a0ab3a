"""JWT bearer tokens in the ingest benchmark, on MariaDB: single points authenticated by an
HS256 JWT beside the same load authenticated by an API key, both as ``Authorization: Bearer``,
interleaved against one server (so both meet the same machine and database)."""

import http.client
import json
import time

import jwt

from scripts.ingest_report import wrk_row
from scripts.sync_bench import RATE_LIMIT_PER_MINUTE, SINGLE_PATH, WARMUP_SECONDS, prepare
from scripts.wrk_runner import run_wrk
from tests.harness import NO_RECYCLING, Gunicorn

CONNECTIONS = 16
SETTINGS = {
    "JWT_SECRET": "bench-ingest-hs256-secret-of-32-bytes",
    "JWT_ISSUER": "https://login.bench.test/",
    "JWT_AUDIENCE": "glowing-fiesta",
    # A subject's limit is the default: as high as the key's, so neither meets a 429.
    "METRICS_RATE_LIMIT_DEFAULT": str(RATE_LIMIT_PER_MINUTE),
}
LOADS = ("API key", "JWT")


def token():
    """A write token for tenant default, good for the run."""
    claims = {
        "iss": SETTINGS["JWT_ISSUER"],
        "aud": SETTINGS["JWT_AUDIENCE"],
        "sub": "bench-ingest",
        "tenant": "default",
        "scope": "write",
        "exp": int(time.time()) + 3600,
    }
    return jwt.encode(claims, SETTINGS["JWT_SECRET"], algorithm="HS256")


def measure(mysql_env, bodies, args, workdir):
    """{load: [WrkResult…]} for the key and the token, ``args.repeats`` runs each."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**mysql_env, **SETTINGS, **NO_RECYCLING, "INGEST_MODE": "sync"}
    key, _ = prepare(env["DATABASE_URL"])
    credentials = {"API key": key, "JWT": token()}
    server = Gunicorn(env, log_path=workdir / "app.log").start()
    results = {}
    try:
        body = bodies["single"].read_text().splitlines()[0]
        for load, credential in credentials.items():
            _preflight(server.port, body, credential, load)
        url = server.base + SINGLE_PATH
        for repeat in range(args.repeats):
            for load, credential in credentials.items():
                if repeat == 0:
                    run_wrk(url, bodies["single"], credential, CONNECTIONS, WARMUP_SECONDS, True)
                result = run_wrk(url, bodies["single"], credential, CONNECTIONS, args.seconds, True)
                results.setdefault(load, []).append(result)
    finally:
        server.stop()
    results["service_log"] = server.errors().splitlines()
    return results


def _preflight(port, body, credential, load):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {credential}", "Content-Type": "application/json"}
        conn.request("POST", SINGLE_PATH, body=body, headers=headers)
        response = conn.getresponse()
        answer = json.loads(response.read())
    finally:
        conn.close()
    if response.status != 201:
        raise RuntimeError(f"single point by {load} answered {response.status}: {answer}")


def section(results):
    """The JWT part of the table: (heading, rows)."""
    figures = results.get("jwt")
    if not figures:
        return "JWT: not measured", []
    by_key = wrk_row(f"single, API key, {CONNECTIONS} conn.", figures["API key"])
    by_token = wrk_row(f"single, JWT, {CONNECTIONS} conn.", figures["JWT"],
                       ceiling_label="API key", ceiling=by_key.value)  # fmt: skip
    heading = (
        "JWT on MariaDB: single points, Authorization: Bearer with an HS256 JWT (verified once, "
        "then cached) beside an API key, runs interleaved on one server"
    )
    return heading, [by_key, by_token]


def figures_of(results):
    """(label, runs) of each load, for the error lines."""
    return [(f"jwt {load}", results["jwt"][load]) for load in LOADS if "jwt" in results]
