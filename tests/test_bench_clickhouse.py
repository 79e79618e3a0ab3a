"""The ClickHouse parts of the benchmarks: what they run and how they interleave (no server)."""

from types import SimpleNamespace

from scripts import bench_ingest, bench_query, clickhouse_query_bench, paired_bench


def test_both_benchmarks_run_their_clickhouse_part_alone():
    assert bench_ingest.parse_args(["--only", "ClickHouse"]).only == ["ClickHouse"]
    assert "clickhouse" in bench_query.PARTS


def test_interleaved_loads_alternate_their_order_and_warm_each_load_once(monkeypatch):
    calls = []
    monkeypatch.setattr(
        paired_bench, "run_wrk", lambda url, body, key, n, seconds: calls.append((url, n, seconds))
    )
    loads = {"ClickHouse 4": ("ch", "body", "k1"), "MariaDB 4": ("maria", "body", "k2")}
    results = paired_bench.interleave(loads, SimpleNamespace(repeats=3, seconds=4), connections=4)
    timed = [url for url, n, seconds in calls if seconds == 4]
    assert timed == ["ch", "maria", "maria", "ch", "ch", "maria"]
    assert len(calls) == 6 + 2 and {n for _, n, _ in calls} == {4}
    assert {load: len(runs) for load, runs in results.items()} == dict.fromkeys(loads, 3)


def test_query_runs_cover_every_query_on_both_engines_each_iteration():
    paths = {"ClickHouse": [], "MariaDB": []}
    getters = {engine: (lambda path, seen=seen: seen.append(path) or 1.0)
               for engine, seen in paths.items()}  # fmt: skip
    results = clickhouse_query_bench.measure(getters, "a", "b", iterations=5, warmup=2)
    assert all(len(samples) == 5 for samples in results.values())
    assert len(results) == 2 * len(clickhouse_query_bench.QUERIES)
    assert len(paths["ClickHouse"]) == len(paths["MariaDB"]) == 7 * 3
    assert len({path.split("?")[0] for path in paths["MariaDB"]}) > 1  # a random metric a run
