"""The percentile sketch: within 1 % of the exact nearest-rank quantile over [1e-9, 1e16] of
either sign, zero exact, merges that add counts exactly, a binary form that round-trips, keys
that fit Int16, and a ClickHouse expression that computes the same keys."""

import ast
import math
import random
import re
import sys
from collections import Counter
from decimal import ROUND_CEILING, Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core import sketch
from app.core.sketch import (
    MAX_KEY,
    MULTIPLIER,
    OFFSET,
    RELATIVE_ACCURACY,
    Sketch,
    clickhouse_key_sql,
    compact,
    frame_count,
    key_of,
    merge_all,
    merge_encoded,
    merged_quantile,
    nearest_rank,
    value_of,
)

SPEC_ERROR = 0.01
# Derandomized: the same examples on every run and machine, and nothing saved between runs.
SEEDED = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=120,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SEEDED_FEWER = settings(SEEDED, max_examples=50)  # exact identities: fewer examples suffice
INT16 = range(-(2**15), 2**15)

magnitudes = st.one_of(
    st.floats(min_value=1e-9, max_value=1e16),
    st.floats(min_value=0.5, max_value=2000),  # a typical latency, many in few buckets
    st.integers(min_value=1, max_value=10**16),
    st.sampled_from([1e-9, 1e16, 1.0, 10**16, math.exp((500 - OFFSET) / MULTIPLIER)]),
)
numbers = st.one_of(
    st.tuples(magnitudes, st.booleans()).map(lambda pair: -pair[0] if pair[1] else pair[0]),
    st.sampled_from([0, 0.0, -0.0]),
)
quantiles = st.one_of(
    st.sampled_from([0.5, 0.9, 0.95, 0.99, 1.0]),
    st.floats(min_value=1e-6, max_value=1.0),
)


@st.composite
def value_sets(draw):
    """Mixed signs, zeros, extreme magnitudes and runs of duplicates; sometimes one value."""
    values = draw(st.lists(numbers, min_size=1, max_size=120))
    repeats = draw(st.lists(st.integers(min_value=0, max_value=len(values) - 1), max_size=20))
    return values + [values[i] for i in repeats] * draw(st.integers(min_value=1, max_value=30))


def exact_quantile(values, q):
    """The value at rank ⌈q·n⌉ of the sorted values, q taken as the decimal it prints as."""
    rank = int((Decimal(str(q)) * len(values)).to_integral_value(ROUND_CEILING))
    return sorted(values)[rank - 1]


def assert_within_spec(estimate, exact):
    if exact == 0:
        assert estimate == 0
    else:
        assert abs(estimate - exact) <= SPEC_ERROR * abs(exact), (estimate, exact)


@SEEDED
@given(value_sets(), st.lists(quantiles, min_size=1, max_size=4))
def test_quantiles_are_within_one_percent_of_the_exact_nearest_rank(values, qs):
    built = Sketch.of(values)
    for q in [0.5, 0.9, 0.95, 0.99, *qs]:
        assert_within_spec(built.quantile(q), exact_quantile(values, q))


near_edges = st.builds(
    lambda index, jitter, negative: (-1 if negative else 1) * math.exp(index / MULTIPLIER) * jitter,
    st.integers(min_value=2 - OFFSET, max_value=MAX_KEY - 1 - OFFSET),
    st.floats(min_value=1 - 1e-6, max_value=1 + 1e-6),
    st.booleans(),
)


def key_across_the_edge(value):
    """The key another engine might give: the other neighbour for values within 1e-6 of an edge
    (real engines' logarithms disagree only within ~1e-13)."""
    if value == 0:
        return 0
    scaled = math.log(abs(value)) * MULTIPLIER
    edge = round(scaled)
    if abs(scaled - edge) > 1e-6 * MULTIPLIER:
        return key_of(value)
    key = (edge if scaled > edge else edge + 1) + OFFSET
    return key if value > 0 else -key


def test_the_stand_in_for_another_engine_moves_values_near_an_edge_only():
    edge = math.exp(100 / MULTIPLIER)
    assert key_across_the_edge(edge * (1 + 1e-9)) == key_of(edge * (1 + 1e-9)) - 1
    assert key_across_the_edge(-edge * (1 - 1e-9)) == key_of(-edge * (1 - 1e-9)) - 1
    assert key_across_the_edge(edge * 1.001) == key_of(edge * 1.001)


@SEEDED
@given(st.lists(st.one_of(near_edges, numbers), min_size=1, max_size=200), quantiles)
def test_values_put_one_bucket_off_at_an_edge_still_answer_within_one_percent(values, q):
    shifted = Sketch(dict(Counter(map(key_across_the_edge, values))))
    for quantile in (0.5, 0.99, q):
        assert_within_spec(shifted.quantile(quantile), exact_quantile(values, quantile))


@SEEDED_FEWER
@given(value_sets())
def test_one_value_at_a_time_builds_the_same_sketch(values):
    one_by_one = Sketch()
    for value in values:
        one_by_one.add(value)
    assert one_by_one == Sketch.of(values)
    assert one_by_one.count == len(values)


@SEEDED_FEWER
@given(value_sets(), st.randoms(use_true_random=False))
def test_merging_the_sketches_of_parts_gives_the_sketch_of_the_whole(values, rng):
    cuts = sorted(rng.sample(range(len(values) + 1), min(5, len(values) + 1)))
    parts = [values[a:b] for a, b in zip([0, *cuts], [*cuts, len(values)], strict=True)]
    whole = Sketch.of(values)
    merged = Sketch()
    for part in parts:
        merged.merge(Sketch.of(part))
    assert merged.counts == whole.counts
    assert merge_all(Sketch.of(part).encode() for part in parts).counts == whole.counts
    left, right = Sketch.of(values[: cuts[0]]), Sketch.of(values[cuts[0] :])
    assert merge_encoded(left.encode(), right.encode()) == whole.encode()


@SEEDED_FEWER
@given(st.lists(value_sets(), max_size=4), quantiles)
def test_the_quantile_of_encoded_sketches_is_the_quantile_of_their_merge(value_lists, q):
    blobs = [Sketch.of(values).encode() for values in value_lists]
    whole = Sketch.of([value for values in value_lists for value in values])
    assert merged_quantile(blobs, q) == whole.quantile(q)


def test_merging_many_large_sketches_adds_their_counts():
    # Past a few thousand keys in all, merge_all switches to a slot per possible key.
    rng = random.Random(8760)
    parts = [
        {key: rng.randrange(1, 2**40) for key in rng.sample(range(-MAX_KEY, MAX_KEY + 1), 300)}
        for _ in range(40)
    ]
    total = Counter()
    for part in parts:
        total.update(part)
    blobs = [Sketch(part).encode() for part in parts]
    assert merge_all(blobs).counts == dict(total)
    assert merged_quantile(blobs, 0.99) == Sketch(dict(total)).quantile(0.99)


def test_extend_and_add_with_a_count_add_to_what_is_there():
    built = Sketch.of([1.0, 2.0])
    built.extend(iter([2.0, -3.0]))
    built.add(0.0, count=4)
    assert built == Sketch.of([1.0, 2.0, 2.0, -3.0, 0, 0, 0, 0])
    with pytest.raises(ValueError):
        built.add(1.0, count=0)


@SEEDED_FEWER
@given(value_sets())
def test_an_encoded_sketch_decodes_to_the_same_counts(values):
    built = Sketch.of(values)
    assert Sketch.decode(built.encode()) == built
    assert Sketch.decode(memoryview(built.encode())) == Sketch.decode(bytearray(built.encode()))
    shuffled = Sketch(dict(reversed(built.counts.items())))
    assert shuffled.encode() == built.encode()  # canonical: keys sorted


@pytest.mark.parametrize("largest, width", [(255, 1), (256, 2), (2**32 - 1, 4), (2**32, 8)])
def test_counts_are_encoded_in_the_smallest_width_that_holds_them(largest, width):
    built = Sketch({-5: 1, 0: 2, 7: largest})
    blob = built.encode()
    assert blob[:4] == bytes((2, width, 3, 0)) and len(blob) == 4 + 3 * (2 + width)
    assert Sketch.decode(blob) == built


def test_a_count_beyond_uint64_cannot_be_encoded():
    with pytest.raises(OverflowError):
        Sketch({1: 2**64}).encode()


@pytest.mark.parametrize(
    "blob",
    [b"", b"\x02", b"\x02\x01\x00", b"\x01\x01\x00\x00", b"\x02\x03\x00\x00",
     b"\x02\x01\x01\x00\x00", b"\x02\x01\x01\x00\x7f\x0b\x01",
     b"\x02\x01\x00\x00\x02"],
)  # fmt: skip
def test_a_blob_that_is_not_an_encoded_sketch_is_refused(blob):
    # Empty, short, version 1, unknown width, ragged, key 2943, a frame then a stray byte.
    with pytest.raises(ValueError):
        Sketch.decode(blob)
    with pytest.raises(ValueError):
        merge_all([blob])
    with pytest.raises(ValueError):
        merge_encoded(Sketch().encode(), blob)


@pytest.mark.parametrize(
    "blob",
    [b"\x02\x01\x01\x00\x05\x00\x00", b"\x02\x01\x02\x00\x05\x00\x05\x00\x01\x02",
     b"\x02\x01\x03\x00\x00\x00\xff\x7f\x05\x00\x01\x01\x01"],
)  # fmt: skip
def test_decoding_checks_every_key_and_count(blob):
    # A zero count, a repeated key, key 32767 between two valid ones: the merges check less.
    with pytest.raises(ValueError):
        Sketch.decode(blob)


def test_every_key_fits_int16_and_the_spec_range_never_reaches_the_collapse_buckets():
    assert MAX_KEY in INT16 and -MAX_KEY in INT16
    assert [key_of(v) for v in (1e-9, -1e-9, 1e16, -1e16)] == [2, -2, MAX_KEY - 1, 1 - MAX_KEY]
    for extreme in (5e-324, 1e-300, sys.float_info.max, -sys.float_info.max):
        assert key_of(extreme) in INT16


def test_the_constants_follow_from_the_accuracy_and_the_range():
    assert RELATIVE_ACCURACY < SPEC_ERROR
    assert sketch.GAMMA == pytest.approx((1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY))
    assert OFFSET == 1 - math.floor(math.log(sketch.MIN_MAGNITUDE) * MULTIPLIER)
    assert MAX_KEY == math.ceil(math.log(sketch.MAX_MAGNITUDE) * MULTIPLIER) + OFFSET + 1


def test_magnitudes_below_the_range_collapse_into_the_smallest_bucket_of_their_sign():
    assert {key_of(v) for v in (9e-10, 1e-12, 1e-300, 5e-324)} == {1}
    assert key_of(-1e-12) == -1
    assert 0.9e-9 < value_of(1) < 1e-9
    assert Sketch.of([1e-12, 2e-15]).quantile(1.0) == value_of(1)


def test_zero_is_exact_and_its_own_key():
    assert key_of(0.0) == key_of(-0.0) == key_of(0) == 0
    built = Sketch.of([-0.0, 0, 0.0, 5.0, -5.0])
    assert built.quantile(0.5) == 0.0
    assert built.counts[0] == 3


def test_every_key_is_the_key_of_its_representative():
    for key in range(-MAX_KEY, MAX_KEY + 1):
        assert key_of(value_of(key)) == key


def test_a_value_near_a_bucket_edge_is_within_one_percent_in_either_neighbour():
    # Where engines' logarithms may disagree: within 1e-12 of an edge; allowed up to ~1e-4.
    for key in range(3, MAX_KEY):
        edge = math.exp((key - 1 - OFFSET) / MULTIPLIER)
        for value in (edge * (1 - 9e-5), edge, edge * (1 + 9e-5)):
            for neighbour in (key - 1, key):
                assert abs(value_of(neighbour) - value) <= SPEC_ERROR * value


def test_values_in_order_have_keys_in_order():
    rng = random.Random(26)
    values = sorted(rng.choice((-1, 1)) * 10 ** rng.uniform(-12, 16) for _ in range(20_000))
    keys = [key_of(v) for v in values]
    assert keys == sorted(keys)


def test_an_empty_sketch_has_no_quantile():
    assert Sketch().quantile(0.5) is None
    assert Sketch().count == 0
    assert merge_all([]).quantile(0.99) is None
    assert merged_quantile([], 0.99) is merged_quantile([Sketch().encode()], 0.99) is None
    assert Sketch.decode(Sketch().encode()) == Sketch()


@pytest.mark.parametrize("q", [0, -0.5, 1.01, math.nan, math.inf, "p99"])
def test_a_quantile_outside_zero_to_one_is_refused(q):
    with pytest.raises(ValueError):
        Sketch.of([1.0]).quantile(q)
    with pytest.raises(ValueError):
        Sketch().quantile(q)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_refused(bad):
    with pytest.raises(ValueError):
        key_of(bad)
    with pytest.raises(ValueError):
        Sketch.of([1.0, bad])
    with pytest.raises(ValueError):
        Sketch.of([bad, -1.0, 0.0])


def test_nearest_rank_reads_q_as_its_decimal():
    assert nearest_rank(0.9, 10) == 9  # not 10, which the double 0.9 would give exactly
    assert nearest_rank(0.07, 100) == 7
    assert [nearest_rank(0.5, n) for n in (1, 2, 3, 4)] == [1, 1, 2, 2]
    assert nearest_rank(1, 7) == nearest_rank(1.0, 7) == 7
    assert nearest_rank(1e-6, 10) == 1


# ClickHouse's functions as Python, to evaluate the expression text ClickHouse will run.
CLICKHOUSE_FUNCTIONS = {
    "toInt16": lambda x: x if x in INT16 else pytest.fail(f"{x} overflows Int16"),
    "toInt32": math.trunc,  # ClickHouse truncates a Float64 toward zero
    "sign": lambda x: (x > 0) - (x < 0),
    "least": min,
    "greatest": max,
    "abs": abs,
    "ceil": lambda x: float(math.ceil(x)),  # Float64 in, Float64 out
    "log": math.log,  # natural logarithm in ClickHouse too
}


def test_the_clickhouse_expression_computes_the_same_keys():
    expression = clickhouse_key_sql("value")
    assert set(re.findall(r"\b[A-Za-z_]\w*", expression)) <= {*CLICKHOUSE_FUNCTIONS, "value"}
    compiled = compile(expression, "<clickhouse>", "eval")
    rng = random.Random(2026)
    values = [rng.choice((-1, 1)) * 10 ** rng.uniform(-15, 17) for _ in range(20_000)]
    values += [0.0, -0.0, 1e-9, 1e16, -1e16, 5e-324, 1.7976931348623157e308]
    values += [math.exp((key - OFFSET) / MULTIPLIER) for key in range(-MAX_KEY, MAX_KEY)]
    for value in values:
        names = {**CLICKHOUSE_FUNCTIONS, "value": value}
        assert eval(compiled, {"__builtins__": {}}, names) == key_of(value), value


def test_the_module_docstring_shows_the_clickhouse_expression():
    squeezed = "".join(sketch.__doc__.split())
    assert "".join(clickhouse_key_sql("value").split()) in squeezed


def test_the_sketch_module_needs_the_standard_library_only():
    tree = ast.parse(Path(sketch.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}  # fmt: skip
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert {name.partition(".")[0] for name in imported} <= set(sys.stdlib_module_names)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(numbers, max_size=50), min_size=1, max_size=6))
def test_frames_one_after_another_are_their_merge(value_lists):
    sketches = [Sketch.of(part) for part in value_lists]
    whole = Sketch.of([value for part in value_lists for value in part])
    stored = b"".join(sketch.encode() for sketch in sketches)
    assert frame_count(stored) == len(value_lists)
    assert Sketch.decode(stored) == whole == merge_all([stored])
    assert compact(stored) == whole.encode() and frame_count(compact(stored)) == 1
    for q in (0.5, 0.99):
        assert merged_quantile([stored], q) == whole.quantile(q)
