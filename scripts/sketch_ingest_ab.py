"""The cost of percentile sketches at ingest, measured in one process: one client alternates
the sketch benchmark's value batch and counter batch (``scripts/sketch_ingest_bench.py``'s
bodies: 1,000 points over 100 metrics) through the Flask test client on a throwaway MariaDB
database, ROUNDS times each, and prints the median time a batch of each — a figure that other
work on the machine skews less than wrk's throughput, as both batches share every moment's
conditions.

    .venv/bin/python scripts/sketch_ingest_ab.py [--rounds 300]
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import create_app  # noqa: E402
from app.db import get_store  # noqa: E402
from scripts.sketch_ingest_bench import write_bodies  # noqa: E402
from tests.harness import drop_database  # noqa: E402
from tests.helpers import MYSQL_SERVER_URL, migrated_database, new_key  # noqa: E402

DATABASE = "gf_bench_sketch_ab"
WARMUP = 20


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    url = migrated_database(DATABASE)
    app = create_app({"TESTING": True, "DATABASE_URL": url, "MAINTENANCE_RUNNER": "off"})
    try:
        client, headers = app.test_client(), {"X-API-Key": new_key(app)}
        with tempfile.TemporaryDirectory() as tmp:
            bodies = {kind: json.loads(path.read_text())
                      for kind, path in write_bodies(Path(tmp)).items()}  # fmt: skip
        times = {kind: [] for kind in bodies}
        for round_ in range(WARMUP + args.rounds):
            for kind in sorted(bodies, reverse=round_ % 2 == 1):
                began = time.perf_counter()
                response = client.post("/api/metrics/batch", json=bodies[kind], headers=headers)
                elapsed = time.perf_counter() - began
                if response.status_code != 201:
                    raise SystemExit(f"{kind}: {response.status_code} {response.get_data()[:300]}")
                if round_ >= WARMUP:
                    times[kind].append(elapsed * 1000)
    finally:
        get_store(app).dispose()
        drop_database(MYSQL_SERVER_URL, DATABASE)
    counter, value = (statistics.median(times[kind]) for kind in ("counter", "value"))
    print(f"{args.rounds} rounds: counter batch {counter:.2f} ms, value batch (sketches) "
          f"{value:.2f} ms; throughput with sketches {counter / value:.2f}x without")  # fmt: skip


if __name__ == "__main__":
    main()
