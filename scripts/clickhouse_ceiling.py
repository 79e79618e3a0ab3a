"""The ClickHouse insert ceiling beside MySQL's executemany ceiling, in one run: how many
points a second the points engine takes when nothing but a loop feeds it — inserts of 1,000
points over 100 metrics recorded in the last minute, through the service's own engine
(``ClickHousePoints.insert``: the same tables and views, a token an insert, every part
fsynced) — and, on the same machine at the same time, MariaDB's ``executemany`` ceiling
(scripts/executemany_ceiling.py, two connections).

    .venv/bin/python scripts/clickhouse_ceiling.py [--seconds 10] [--points-url chdb:///…]
"""

import argparse
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.config import load  # noqa: E402
from app.db import Store  # noqa: E402
from scripts.executemany_ceiling import BATCH_ROWS, Ceiling, batch_rows, create_table  # noqa: E402


def clickhouse_rate(store, seconds, seed=1):
    """Points a second inserted into the store's ClickHouse for ``seconds``."""
    rng, rows = random.Random(seed), 0
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        batch = [{**row, "series_id": 0} for row in batch_rows(rng)]
        store.points.insert(batch, uuid.uuid4().hex)
        rows += BATCH_ROWS
    return rows / (time.perf_counter() - began)


def mysql_rate(mysql_url, seconds, connections=2):
    """MariaDB's executemany ceiling (points a second) over a throwaway database."""
    from tests.harness import drop_database, recreate_database

    name = "gf_bench_clickhouse_ceiling"
    recreate_database(mysql_url, name)
    url = f"{mysql_url}/{name}"
    store = Store(load({"DATABASE_URL": url}))
    try:
        store.migrate()
        create_table(store.write)
        ceiling = Ceiling(url, connections)
        try:
            return ceiling.measure(connections, seconds)
        finally:
            ceiling.close()
    finally:
        store.dispose()
        drop_database(mysql_url, name)


def main(argv=None):
    """Measure both and print them with their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--mysql-url", default="mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("--points-url", help="default: chdb:/// in a temporary directory")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        points_url = args.points_url or f"chdb:///{tmp}/points"
        store = Store(
            load({"DATABASE_URL": f"sqlite:///{tmp}/gf.sqlite3", "POINTS_URL": points_url})
        )
        try:
            store.migrate()
            clickhouse = clickhouse_rate(store, args.seconds)
        finally:
            store.dispose()
    mysql = mysql_rate(args.mysql_url, args.seconds)
    print(f"ClickHouse (in process), inserts of {BATCH_ROWS}: {clickhouse:,.0f} points/s")
    print(f"MariaDB executemany ceiling, 2 connections: {mysql:,.0f} points/s")
    print(f"ratio: {clickhouse / mysql:.2f}× (target ≥ 3×)")


if __name__ == "__main__":
    main()
