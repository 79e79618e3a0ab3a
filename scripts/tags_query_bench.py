"""Tags in the query benchmark (``make bench-query BENCH_ARGS="--only tags"``): a metric with
1,000 series over 30 days beside an untagged metric holding the same points, and a metric with
10,000 series for the tag listings, loaded directly into their own MariaDB/MySQL database
(``gf_bench_tags``) with portable ``INSERT … SELECT``: one point per series and hour, their
minute and hour rollups per metric and per series, and the catalogue (series, series_tags).

Then, through the HTTP API (gunicorn, one keep-alive client), in random order every
iteration: the hourly sum over 30 days of the untagged metric and of the tagged one
(unfiltered: target p95 <= 1.5x the untagged), of one series (``filter=host=h7``), grouped by
a tag of 10 values with ``top=5``, and the tag listings of the 10,000-series metric (a key's
first page of values: target p95 <= 10 ms; its keys).
"""

import http.client
import json
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode

from sqlalchemy import func, insert, select, text, update

from app.core.tags import identity
from app.db import create_engine_for
from app.db.migrate import migrate
from app.db.schema import metric_points, metrics, series, series_tags, tenants
from tests.harness import NO_RECYCLING, Gunicorn, drop_database, new_key, recreate_database

DATABASE = "gf_bench_tags"
DAYS = 30
HOURS = DAYS * 24
SERIES = 1000
WIDE_SERIES = 10_000
GROUP_VALUES = 10
TOP = 5
CHUNK_SERIES = 100
TAGGED, PLAIN, WIDE = "bench.tags.tagged", "bench.tags.plain", "bench.tags.wide"
RATIO_TARGET = 1.5  # tagged unfiltered p95 / untagged p95
LISTING_TARGET_MS = 10
GROUP_LABEL = f"group_by=dc top={TOP}"

_POINTS = text(
    "INSERT INTO metric_points (metric_id, series_id, recorded_at, value) "
    "SELECT s.metric_id, s.series_id, "
    "  TIMESTAMPADD(MICROSECOND, seq.n * 3600000000 + FLOOR(RAND() * 3600000000), :t0), "
    "  ROUND(RAND() * 1000, 3) "
    "FROM series s CROSS JOIN ("
    "  SELECT a.d + 10 * b.d + 100 * c.d AS n FROM digits a, digits b, digits c) seq "
    "WHERE s.metric_id = :metric AND s.series_id BETWEEN :lo AND :hi AND seq.n < :hours"
)
# The untagged metric gets the same points, all of its series 0.
_COPY = text(
    "INSERT INTO metric_points (metric_id, series_id, recorded_at, value) "
    "SELECT :plain, 0, recorded_at, value FROM metric_points "
    "WHERE metric_id = :tagged AND series_id BETWEEN :lo AND :hi"
)
_ROLLUP = (
    "INSERT INTO {table} ({keys}, bucket, n, total, residual, vmin, vmax) "
    "SELECT {keys}, DATE_FORMAT(recorded_at, '{fmt}'), COUNT(*), "
    "SUM(CAST(value AS DECIMAL(65,30))), 0, MIN(value), MAX(value) "
    "FROM metric_points WHERE metric_id = :metric AND series_id BETWEEN :lo AND :hi "
    "GROUP BY {keys}, {slot}"
)
_FORMATS = {"minute": "%Y-%m-%d %H:%i:00", "hour": "%Y-%m-%d %H:00:00"}


def tags_of(index):
    """Series ``index``'s three tags: host (one a series), dc (10 values), env (2 values)."""
    return {"host": f"h{index}", "dc": f"dc{index % GROUP_VALUES}", "env": f"e{index % 2}"}


def _catalogue(conn, metric_id, count, now):
    """Series 1..count of a tagged metric, its series_tags counts; returns how many rows."""
    rows, counts = [], {}
    for index in range(count):
        tags = tags_of(index)
        tags_text, tags_hash = identity(tags)
        rows.append({"metric_id": metric_id, "series_id": index + 1, "tags_hash": tags_hash,
                     "tags": tags_text, "first_seen": now, "last_seen": now})  # fmt: skip
        for pair in tags.items():
            counts[pair] = counts.get(pair, 0) + 1
    conn.execute(insert(series), rows)
    conn.execute(
        insert(series_tags),
        [{"metric_id": metric_id, "tag_key": key, "tag_value": value, "series_count": n}
         for (key, value), n in sorted(counts.items())],
    )  # fmt: skip
    return len(rows)


def load(engine, first_time):
    """The three metrics, their catalogue, points and rollups; returns (points, seconds)."""
    started = time.perf_counter()
    now = datetime.now(UTC).replace(tzinfo=None)
    with engine.begin() as conn:
        for name, tagged in ((TAGGED, 1), (PLAIN, 0), (WIDE, 1)):
            conn.execute(insert(metrics).values(name=name, type="value", created_at=now,
                                                updated_at=now, tagged=tagged))  # fmt: skip
        ids = dict(conn.execute(select(metrics.c.name, metrics.c.id)).all())
        made = _catalogue(conn, ids[TAGGED], SERIES, now) + _catalogue(
            conn, ids[WIDE], WIDE_SERIES, now
        )
        conn.execute(insert(series).values(metric_id=ids[PLAIN], series_id=0, tags_hash=0,
                                           tags="{}", first_seen=now, last_seen=now))  # fmt: skip
        conn.execute(update(tenants).where(tenants.c.id == 1).values(series_count=made + 1))
    with engine.connect() as conn:
        conn.execute(text("CREATE TEMPORARY TABLE digits (d INT NOT NULL)"))
        conn.execute(text("INSERT INTO digits VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)"))
        for lo in range(1, SERIES + 1, CHUNK_SERIES):
            chunk = {"lo": lo, "hi": lo + CHUNK_SERIES - 1}
            conn.execute(_POINTS, {"metric": ids[TAGGED], "t0": first_time, "hours": HOURS,
                                   **chunk})  # fmt: skip
            conn.execute(_COPY, {"plain": ids[PLAIN], "tagged": ids[TAGGED], **chunk})
            conn.commit()
        _roll_up(conn, ids)
        points = conn.execute(select(func.count()).select_from(metric_points)).scalar()
    return points, time.perf_counter() - started


def _roll_up(conn, ids):
    """What the writer would have kept: per-metric rollups of both, per-series ones of the
    tagged metric; every tier complete."""
    for tier, fmt in _FORMATS.items():
        jobs = [
            (f"metric_rollups_{tier}", "metric_id", ids[TAGGED], SERIES),
            (f"metric_rollups_{tier}", "metric_id", ids[PLAIN], 0),
            (f"series_rollups_{tier}", "metric_id, series_id", ids[TAGGED], SERIES),
        ]
        for table, keys, metric_id, last in jobs:
            slot = keys.count(",") + 2  # the bucket's position in the SELECT
            statement = text(_ROLLUP.format(table=table, keys=keys, fmt=fmt, slot=slot))
            conn.execute(statement, {"metric": metric_id, "lo": 0, "hi": last})
            conn.commit()
    conn.execute(text("UPDATE rollup_state SET complete_from = '1970-01-01'"))
    conn.commit()


def percentile(samples, fraction):
    """The nearest-rank percentile of ``samples``."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def queries(start, end):
    """{label: (path, parameters)}, the untagged control first."""
    hourly = {"operation": "sum", "window": "1h", "start": start, "end": end}
    return {
        "untagged, unfiltered": ("/api/metrics/aggregate", {"name": PLAIN, **hourly}),
        "1,000 series, unfiltered": ("/api/metrics/aggregate", {"name": TAGGED, **hourly}),
        "filter=host=h7": ("/api/metrics/aggregate",
                           {"name": TAGGED, **hourly, "filter": "host=h7"}),
        GROUP_LABEL: ("/api/metrics/aggregate",
                                   {"name": TAGGED, **hourly, "group_by": "dc", "top": TOP}),
        "values of host (10k)": (f"/api/metrics/{quote(WIDE)}/tags/host", {}),
        "keys (10k series)": (f"/api/metrics/{quote(WIDE)}/tags", {}),
    }  # fmt: skip


def measure(get, start, end, iterations, warmup, slow_iterations, seed=1):
    """{label: [ms…]}: every query once an iteration, in random order; the grouping (seconds
    a run: it reads every series' rows) only in the last warm-up iteration and the first
    ``slow_iterations`` measured ones, still interleaved with the rest."""
    rng = random.Random(seed)
    found = queries(start, end)
    results = {label: [] for label in found}
    for iteration in range(warmup + iterations):
        labels = list(found)
        if not warmup - 1 <= iteration < warmup + slow_iterations:
            labels.remove(GROUP_LABEL)
        rng.shuffle(labels)
        for label in labels:
            path, parameters = found[label]
            elapsed = get(f"{path}?{urlencode(parameters)}" if parameters else path)
            if iteration >= warmup:
                results[label].append(elapsed)
    return results


def report(results, iterations):
    """p50 and p95 per query (and how many runs), the ratios to the untagged query, the
    targets."""
    base = results["untagged, unfiltered"]
    base_p50, base_p95 = statistics.median(base), percentile(base, 0.95)
    print(
        f"\ntags: {iterations} runs a query, interleaved in random order, one keep-alive "
        f"client; {SERIES:,} series x {HOURS} hours, hourly sum over {DAYS} days; ms"
    )
    header = (f"{'query':<26}{'runs':>5}{'p50':>9}{'p95':>9}{'p50 ratio':>11}{'p95 ratio':>11}"
              "  target")  # fmt: skip
    print(header)
    print("-" * len(header))
    for label, samples in results.items():
        p50, p95 = statistics.median(samples), percentile(samples, 0.95)
        listing = label.startswith(("values", "keys"))
        ratios = " " * 22 if listing else f"{p50 / base_p50:>10.2f}x{p95 / base_p95:>10.2f}x"
        target = ""
        if label == "1,000 series, unfiltered":
            met = p95 / base_p95 <= RATIO_TARGET
            target = f"p95 <= {RATIO_TARGET}x untagged {'met' if met else 'MISSED'}"
        elif label.startswith("values"):
            met = p95 <= LISTING_TARGET_MS
            target = f"p95 <= {LISTING_TARGET_MS} ms {'met' if met else 'MISSED'}"
        print(f"{label:<26}{len(samples):>5}{p50:>9.2f}{p95:>9.2f}{ratios}  {target}".rstrip())


def http_getter(port, key):
    """A function timing one GET of a path over one keep-alive connection, in ms (given a
    list as ``answers``, it appends the parsed answer)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def get(path, answers=None):
        began = time.perf_counter()
        connection.request("GET", path, headers={"X-API-Key": key})
        response = connection.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - began
        if response.status != 200:
            raise SystemExit(f"{path}: {response.status} {body[:300]!r}")
        answer = json.loads(body)
        if answers is not None:
            answers.append(answer)
        return elapsed * 1000

    return get


def served(args, database, key_name, loader, timed):
    """Recreate ``database`` and fill it with ``loader(engine)`` (unless --reuse), serve it
    with one gunicorn worker, and return ``timed(get)`` (``get``: http_getter's); drops the
    database unless --keep or --reuse."""
    url = f"{args.mysql_url}/{database}"
    if not args.reuse:
        recreate_database(args.mysql_url, database)
    engine = create_engine_for(url)
    server = None
    try:
        if not args.reuse:
            migrate(engine, retention_days=DAYS + 2)
            loader(engine)
        key, _ = new_key(url, key_name, 10**9)
        env = {"DATABASE_URL": url, "WEB_CONCURRENCY": "1", "MAINTENANCE_RUNNER": "off"}
        server = Gunicorn({**env, **NO_RECYCLING}).start()
        return timed(http_getter(server.port, key))
    finally:
        if server is not None:
            server.stop()
        engine.dispose()
        if not args.keep and not args.reuse:
            drop_database(args.mysql_url, database)


def iso_range(end, days):
    """The texts of [end − days, end) to the second."""
    return tuple(f"{moment:%Y-%m-%dT%H:%M:%SZ}" for moment in (end - timedelta(days=days), end))


def run(args, end):
    """Load (unless --reuse), serve, measure, report; drops the database unless --keep."""

    def loader(engine):
        points, seconds = load(engine, end - timedelta(days=DAYS))
        print(f"tags: loaded {points:,} points, {SERIES:,} + 1 + {WIDE_SERIES:,} series "
              f"and their rollups in {seconds:.1f} s")  # fmt: skip

    def timed(get):
        slow = min(args.iterations, args.group_iterations)
        return measure(get, *iso_range(end, DAYS), args.iterations, args.warmup, slow)

    results = served(args, DATABASE, "bench-tags", loader, timed)
    report(results, args.iterations)
    return results
