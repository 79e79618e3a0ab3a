"""Alerts benchmark: one evaluation tick over many alerts on MariaDB, answered from rollups.

    make bench-alerts [BENCH_ARGS="--alerts 1000 --metrics 100 --ticks 3"]

Fills a throwaway database (``gf_bench_alerts_<pid>``) with ``--metrics`` value metrics, a
point a minute each for the last two hours (through the service's own write path, so the
rollups are the writer's), and ``--alerts`` alerts spread over them: value alerts on each
operation and window, delta alerts against the hour before, data alerts. Thresholds are out of
reach, so no notice is sent and a tick measures evaluation alone. Then ``--ticks`` ticks at
successive minute boundaries (each judges every alert anew); prints each tick's seconds and
their median beside the target (1,000 alerts in at most 10 s).
"""

import argparse
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import create_app, shutdown  # noqa: E402
from app.api.auth import create_key  # noqa: E402
from app.core.timeutil import isoformat_z, utcnow  # noqa: E402
from app.db import get_store  # noqa: E402
from app.db.migrate import migrate  # noqa: E402
from app.jobs import alerts  # noqa: E402
from tests.harness import drop_database, recreate_database  # noqa: E402

DATABASE_PREFIX = "gf_bench_alerts_"
TARGET_SECONDS = 10.0
TARGET_ALERTS = 1000
WINDOWS = ("1m", "5m", "15m", "1h")
OPERATIONS = ("avg", "sum", "min", "max", "count")


def fill(client, auth, metrics, now):
    """A point a minute for two hours on each metric, in batches of up to 1,000."""
    items = [
        {"name": f"bench.alerts.{index}", "type": "value",
         "value": round(random.uniform(1, 100), 2),
         "recorded_at": isoformat_z(now - timedelta(minutes=minute, seconds=30))}
        for index in range(metrics)
        for minute in range(120)
    ]  # fmt: skip
    for first in range(0, len(items), 1000):
        answer = client.post("/api/metrics/batch", json={"metrics": items[first:first + 1000]},
                             headers=auth)  # fmt: skip
        assert answer.status_code == 201, answer.get_json()


def alert_body(index, metrics):
    """The ``index``-th alert: value, delta and data alerts in turn, none within reach."""
    body = {
        "metric": f"bench.alerts.{index % metrics}",
        "window": WINDOWS[index % len(WINDOWS)],
        "notify": ["webhook:https://hooks.example.com/bench"],
    }
    kind = ("value", "value", "delta", "data")[index % 4]
    if kind == "value":
        body.update(kind="value", operation=OPERATIONS[index % len(OPERATIONS)], condition=">",
                    threshold=1e12)  # fmt: skip
    elif kind == "delta":
        body.update(kind="delta", operation="avg", percent=1e6, direction="up", compare="1h")
    else:
        body.update(kind="data")
    return body


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mysql-url", default="mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("--alerts", type=int, default=TARGET_ALERTS)
    parser.add_argument("--metrics", type=int, default=100)
    parser.add_argument("--ticks", type=int, default=3)
    args = parser.parse_args()
    name = f"{DATABASE_PREFIX}{os.getpid()}"
    recreate_database(args.mysql_url, name)
    app = create_app({"DATABASE_URL": f"{args.mysql_url}/{name}", "MAINTENANCE_RUNNER": "off"})
    try:
        store = get_store(app)
        migrate(store.write)
        raw, _ = create_key(store, "bench", 10**9)
        client, auth = app.test_client(), {"X-API-Key": raw}
        now = utcnow().replace(second=0, microsecond=0)
        began = time.perf_counter()
        fill(client, auth, args.metrics, now)
        for index in range(args.alerts):
            answer = client.post("/api/alerts", json=alert_body(index, args.metrics), headers=auth)
            assert answer.status_code == 201, answer.get_json()
        print(f"loaded {args.metrics} metrics x 120 minutes and {args.alerts} alerts in "
              f"{time.perf_counter() - began:.1f} s", flush=True)  # fmt: skip
        seconds = []
        for tick in range(args.ticks):
            moment = now + timedelta(minutes=tick + 1, seconds=5)
            began = time.perf_counter()
            with app.app_context():
                result = alerts.tick(store, app.config, moment)
            seconds.append(time.perf_counter() - began)
            print(f"tick {tick + 1}: {seconds[-1]:.2f} s, {result}", flush=True)
        median = statistics.median(seconds)
        scaled = median * TARGET_ALERTS / args.alerts
        verdict = "met" if scaled <= TARGET_SECONDS else "MISSED"
        print(f"median tick {median:.2f} s for {args.alerts} alerts ({scaled:.2f} s per "
              f"{TARGET_ALERTS}); target <= {TARGET_SECONDS:.0f} s per {TARGET_ALERTS}: "
              f"{verdict}")  # fmt: skip
        return 0 if verdict == "met" else 1
    finally:
        shutdown(app)
        drop_database(args.mysql_url, name)


if __name__ == "__main__":
    sys.exit(main())
