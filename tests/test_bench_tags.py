"""The tags parts of the benchmarks: what they send and how they interleave (no server)."""

import json

import pytest

from scripts import bench_ingest, tags_ingest_bench, tags_query_bench


def test_bench_ingest_runs_the_tags_part_alone_and_refuses_unknown_parts():
    assert bench_ingest.parse_args(["--only", "tags"]).only == ["tags"]
    assert "tags" in bench_ingest.parse_args([]).only
    with pytest.raises(SystemExit):
        bench_ingest.parse_args(["--only", "tag"])


def test_tagged_batches_are_the_untagged_ones_with_three_tags_a_point(tmp_path):
    paths = tags_ingest_bench.write_bodies(tmp_path)
    plain = json.loads(paths["untagged"].read_text())["metrics"]
    tagged = json.loads(paths["tagged"].read_text())["metrics"]
    assert len(plain) == len(tagged) == 1000
    for bare, with_tags in zip(plain, tagged, strict=True):
        assert "tags" not in bare
        assert len(with_tags["tags"]) == 3
        assert {k: v for k, v in with_tags.items() if k not in ("name", "tags")} == {
            k: v for k, v in bare.items() if k != "name"
        }
    sets = {}
    for item in tagged:
        sets.setdefault(item["name"], set()).add(json.dumps(item["tags"], sort_keys=True))
    assert len(sets) == tags_ingest_bench.METRICS
    assert {len(s) for s in sets.values()} == {10}


def test_tag_query_runs_interleave_and_the_grouping_runs_only_its_share():
    calls = []

    def get(path):
        calls.append(path)
        return 1.0

    results = tags_query_bench.measure(get, "a", "b", iterations=8, warmup=2, slow_iterations=3)
    group = tags_query_bench.GROUP_LABEL
    assert len(results[group]) == 3
    assert all(len(samples) == 8 for label, samples in results.items() if label != group)
    assert len(calls) == 10 * 5 + 1 + 3  # the grouping once warm, then 3 times
    assert any("filter=host%3Dh7" in path for path in calls)
    assert any("group_by=dc" in path and "top=5" in path for path in calls)


def test_tag_query_catalogue_has_one_host_a_series_and_ten_groups():
    sets = [tags_query_bench.tags_of(i) for i in range(tags_query_bench.SERIES)]
    assert len({s["host"] for s in sets}) == tags_query_bench.SERIES
    assert len({s["dc"] for s in sets}) == tags_query_bench.GROUP_VALUES == 10
    assert all(len(s) == 3 for s in sets)
