"""Ingest benchmark: requests/s and points/s through gunicorn on SQLite and MariaDB, beside
GET /health (the HTTP floor) measured in the same run.

    make bench-ingest [BENCH_ARGS="--seconds 5 --repeats 3 --clients 4"]

Each case runs ``--repeats`` times for ``--seconds`` with ``--clients`` keep-alive client
threads; the report gives the median. MariaDB uses its own ``gf_bench_ingest`` database,
dropped at the end; SQLite a temporary file.
"""

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.auth import create_key  # noqa: E402
from app.db import create_engine_for, run_in_transaction  # noqa: E402
from app.db.migrate import migrate  # noqa: E402
from scripts.harness import Gunicorn, drop_database, recreate_database  # noqa: E402

DATABASE = "gf_bench_ingest"
BATCH = 100


def cases(key):
    """name → (method, path, body, headers, points per request)."""
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    single = json.dumps({"name": "bench.single", "value": 1}).encode()
    batch = json.dumps(
        {"metrics": [{"name": f"bench.b{i % 10}", "type": "counter"} for i in range(BATCH)]}
    ).encode()
    return {
        "GET /health (floor)": ("GET", "/health", None, headers, 0),
        "POST counter": ("POST", "/api/metrics/counter", single, headers, 1),
        f"POST batch of {BATCH}": ("POST", "/api/metrics/batch", batch, headers, BATCH),
    }


def hammer(port, case, seconds, clients):
    """Requests completed per second by ``clients`` keep-alive threads for ``seconds``."""
    method, path, body, headers, _ = case
    done = [0] * clients
    failures = []
    deadline = time.perf_counter() + seconds

    def client(slot):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.perf_counter() < deadline:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status >= 300:
                failures.append(response.status)
                break
            done[slot] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"{path} answered {failures[0]}")
    return sum(done) / (time.perf_counter() - started)


def bench_backend(label, url, args):
    """Migrate, serve, run every case ``--repeats`` times and print the medians."""
    engine = create_engine_for(url)
    migrate(engine)
    key, _ = run_in_transaction(engine, create_key, "bench", 10**9)
    engine.dispose()
    server = Gunicorn({"DATABASE_URL": url}).start()
    try:
        rows = []
        for name, case in cases(key).items():
            rates = [
                hammer(server.port, case, args.seconds, args.clients) for _ in range(args.repeats)
            ]
            rows.append((name, statistics.median(rates), case[4]))
    finally:
        server.stop()
    floor = rows[0][1]
    print(f"\n{label}: median of {args.repeats} x {args.seconds} s, {args.clients} clients")
    print(f"{'case':<22}{'req/s':>10}{'points/s':>11}{'vs floor':>10}")
    for name, rate, points in rows:
        print(f"{name:<22}{rate:>10.0f}{rate * points:>11.0f}{rate / floor:>9.2f}x")


def main():
    """Both backends in turn."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mysql-url", default="mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench_backend("SQLite (embedded default)", f"sqlite:///{tmp}/bench.sqlite3", args)
    recreate_database(args.mysql_url, DATABASE)
    try:
        bench_backend("MariaDB", f"{args.mysql_url}/{DATABASE}", args)
    finally:
        drop_database(args.mysql_url, DATABASE)


if __name__ == "__main__":
    main()
