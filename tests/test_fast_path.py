"""The fast path for common points accepts exactly what the schema accepts, with the same result;
everything else falls through to the schema and its error messages."""

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from app.api.schemas import PointSchema, accepted_window, load_point
from app.core.timeutil import EPOCH, isoformat_z, utcnow

NOW = utcnow().replace(microsecond=123456)
WINDOW = accepted_window(NOW, 7, 60)
SCHEMAS = [PointSchema(), PointSchema("counter"), PointSchema("value")]

names = st.one_of(
    st.from_regex(r"\A[A-Za-z0-9._-]{1,40}\Z"),
    st.just("x" * 255),
    st.just("x" * 256),
    st.sampled_from(["", "bad name", "caf\u00e9", "a/b", "tab\t"]),
    st.integers(),
    st.none(),
    st.booleans(),
    st.lists(st.text(max_size=3), max_size=2),
)
numbers = st.one_of(
    st.integers(min_value=-(10**17), max_value=10**17),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e16, -1e16, 1e16 + 2, 10**16, 10**16 + 1, 0, -0.0, 5e-324]),
)
values = st.one_of(numbers, st.booleans(), st.none(), st.text(max_size=5), st.lists(st.integers()))
moments = st.one_of(
    st.floats(min_value=-8 * 86400, max_value=120).map(lambda s: NOW + timedelta(seconds=s)),
    st.sampled_from([WINDOW.earliest, WINDOW.latest, WINDOW.earliest - timedelta(microseconds=1)]),
)
times = st.one_of(
    moments.map(isoformat_z),
    moments.map(lambda m: (m - EPOCH).total_seconds()),
    moments.map(lambda m: m.isoformat() + "+00:00"),
    st.sampled_from(["yesterday", "", "2026-13-01T00:00:00Z", "1e20", "nan"]),
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
)
tag_keys = st.one_of(
    st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_.-]{0,8}\Z"),
    st.sampled_from(["", "9x", "a b", "x" * 64, "x" * 65]),
)
tag_values = st.one_of(
    st.text(min_size=1, max_size=6),  # control characters, ',' and '\\' among them
    st.sampled_from(["", "v" * 255, "v" * 256, "a,b", "a\\b"]),
    st.integers(),
    st.none(),
)
tag_sets = st.one_of(
    st.dictionaries(tag_keys, tag_values, max_size=4),
    st.dictionaries(st.from_regex(r"\Ak[0-9]{1,2}\Z"), st.just("v"), min_size=15, max_size=18),
    st.sampled_from([None, [], "host:a", 5]),
)
types = st.one_of(
    st.sampled_from(["counter", "value", "gauge", "Counter", ""]), st.none(), st.integers()
)


@st.composite
def items(draw):
    item = {}
    for key, strategy in (
        ("name", names),
        ("metric", names),
        ("type", types),
        ("value", values),
        ("recorded_at", times),
        ("tags", tag_sets),
        ("extra", st.integers()),
    ):
        if draw(st.booleans()):
            item[key] = draw(strategy)
    return item


def outcome(schema, item, fast):
    try:
        return ("point", load_point(schema, item, WINDOW, fast=fast))
    except ValidationError as exc:
        return ("error", type(exc).__name__, getattr(exc, "code", None), exc.messages)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(item=items(), route=st.sampled_from(range(len(SCHEMAS))))
def test_fast_path_matches_the_schema(item, route):
    schema = SCHEMAS[route]
    assert outcome(schema, item, fast=True) == outcome(schema, item, fast=False)


@settings(max_examples=500, deadline=None)
@given(tags=tag_sets, route=st.sampled_from(range(len(SCHEMAS))))
def test_fast_path_matches_the_schema_on_tags(tags, route):
    """A valid point but for its tags: each tag rule judged alike on both paths."""
    item = {"name": "a.b", "type": "value", "value": 2, "recorded_at": isoformat_z(NOW)}
    item["tags"] = tags
    schema = SCHEMAS[route]
    assert outcome(schema, item, fast=True) == outcome(schema, item, fast=False)


def test_fast_path_takes_the_common_valid_item():
    from app.api.schemas import fast_point

    item = {"name": "a.b", "type": "counter", "value": 3, "recorded_at": isoformat_z(NOW)}
    assert fast_point(item, None, WINDOW) is not None
    assert fast_point({"name": "a.b"}, "counter", WINDOW).value == 1.0
