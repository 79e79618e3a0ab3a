"""The rules of dimensions (app/core/tags.py): tag validation, the form text, series identity,
filters over a catalogue, group-by keys, CSV headers and the top-N order."""

import ast
import hashlib
import re
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core import tags
from app.core.tags import (
    FILTER_PATTERN,
    GROUP_BY_PATTERN,
    TagError,
    canonical_pairs,
    canonical_text,
    column_header,
    group_key,
    group_tags,
    identity,
    matches,
    order_groups,
    parse_filter,
    parse_filters,
    parse_group_by,
    parse_tags_text,
    select,
    tags_from_text,
    tags_hash,
    validate_tags,
)

pytestmark = pytest.mark.points

VALUE_MESSAGE = "value must be 1-255 characters without control characters, ',' or '\\'"

keys = st.from_regex(tags.TAG_KEY_PATTERN, fullmatch=True)
values = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters=",\\"),
    min_size=1,
    max_size=tags.MAX_TAG_VALUE_LENGTH,
)
tag_sets = st.dictionaries(keys, values, max_size=tags.DEFAULT_MAX_TAGS)
# Whole tag sets are slow to generate; fewer examples keep the file well under ten seconds.
few_examples = settings(max_examples=40)


def refusal(call, *args, **kwargs):
    """The TagError ``call`` raises (it must raise one)."""
    with pytest.raises(TagError) as caught:
        call(*args, **kwargs)
    return caught.value


# --- validation -----------------------------------------------------------------------------


def test_no_tags_and_an_empty_object_are_the_empty_set():
    assert validate_tags(None) == {}
    assert validate_tags({}) == {}


def test_valid_tags_come_back_in_key_order():
    assert list(validate_tags({"status": "500", "host": "web-3"})) == ["host", "status"]


@pytest.mark.parametrize("key", ["a", "_", "A" * 64, "a.b-c_d", "_9", "Host"])
def test_keys_by_the_pattern_are_accepted(key):
    assert validate_tags({key: "x"}) == {key: "x"}


@pytest.mark.parametrize("key", ["a" * 65, "9a", ".a", "-a", "a b", "a:b", "a=b", "é", "a\n"])
def test_keys_outside_the_pattern_are_refused_by_name(key):
    error = refusal(validate_tags, {key: "x"})
    assert error.field == "tags"
    assert repr(key) in error.reason and "must start with a letter or '_'" in error.reason


def test_an_empty_key_is_refused():
    assert str(refusal(validate_tags, {"": "x"})) == "tags: a tag key must not be empty"


def test_a_key_that_is_not_a_string_is_refused():
    assert "must be a string, not a number" in str(refusal(validate_tags, {1: "x"}))


@pytest.mark.parametrize("value", ["x", "x" * 255, " ", "café ☃ 🙂", "a:b=c;d{e}", "~/"])
def test_values_of_1_to_255_allowed_characters_are_accepted(value):
    assert validate_tags({"k": value}) == {"k": value}


@pytest.mark.parametrize(
    "value", ["", "x" * 256, "a,b", "a\\b", "\x00", "a\nb", "\t", "\x1f", "\x7f", "\x9f", "\ud800"]
)
def test_bad_values_are_refused_naming_the_tag(value):
    error = refusal(validate_tags, {"host": value})
    assert isinstance(error, ValueError)
    assert (error.field, error.reason) == ("tags.host", VALUE_MESSAGE)
    assert str(error) == f"tags.host: {VALUE_MESSAGE}"


@pytest.mark.parametrize(
    "value, says",
    [
        (500, 'not a number (write "500")'),
        (1.5, 'not a number (write "1.5")'),
        (True, "not a boolean"),
        (None, "not null"),
        ({"a": "b"}, "not an object (tags do not nest)"),
        (["a"], "not a list (tags do not nest)"),
    ],
)
def test_values_that_are_not_strings_are_refused(value, says):
    error = refusal(validate_tags, {"status": value})
    assert str(error) == f"tags.status: value must be a string, {says}"


@pytest.mark.parametrize("raw", [["a"], "host:a", 5])
def test_tags_that_are_not_an_object_are_refused(raw):
    assert refusal(validate_tags, raw).field == "tags"


def test_at_most_max_tags_per_point():
    sixteen = {f"k{i}": "v" for i in range(16)}
    assert validate_tags(sixteen) == sixteen
    error = refusal(validate_tags, {**sixteen, "k16": "v"})
    assert str(error) == "tags: at most 16 tags per point (got 17)"
    assert "at most 2 tags" in str(refusal(validate_tags, {"a": "1", "b": "2", "c": "3"}, 2))


def test_the_field_prefix_names_the_batch_item():
    assert refusal(validate_tags, {"host": ""}, field="items[2].tags").field == "items[2].tags.host"


# --- the form text --------------------------------------------------------------------------


def test_form_text_parses_to_tags():
    assert parse_tags_text("") == {}
    assert parse_tags_text("host:web-3,dc:eu") == {"dc": "eu", "host": "web-3"}


def test_form_text_values_may_hold_colons():
    assert parse_tags_text("url:http://x:80/a") == {"url": "http://x:80/a"}


@pytest.mark.parametrize(
    "text, field, says",
    [
        ("host", "tags", "'host' must be key:value"),
        ("host:a,", "tags", "'' must be key:value"),
        ("host:a,host:b", "tags.host", "given twice"),
        ("host:", "tags.host", VALUE_MESSAGE),
        ("host:a, dc:b", "tags", "key ' dc' must start"),
        (":a", "tags", "a tag key must not be empty"),
    ],
)
def test_bad_form_text_is_refused_naming_the_tag(text, field, says):
    error = refusal(parse_tags_text, text)
    assert error.field == field and says in error.reason


def test_form_text_counts_tags_too():
    text = ",".join(f"k{i}:v" for i in range(17))
    assert "at most 16 tags" in str(refusal(parse_tags_text, text))


@few_examples
@given(tag_sets)
def test_form_text_reads_what_the_object_says(tag_set):
    text = ",".join(f"{key}:{value}" for key, value in tag_set.items())
    assert parse_tags_text(text) == validate_tags(tag_set)


# --- series identity ------------------------------------------------------------------------


def test_canonical_forms():
    assert canonical_pairs({"b": "2", "a": "1"}) == (("a", "1"), ("b", "2"))
    assert canonical_text({"b": "2", "a": "1"}) == '{"a":"1","b":"2"}'
    assert canonical_text({"city": "Zürich"}) == '{"city":"Zürich"}'
    assert canonical_text((("b", "2"), ("a", "1"))) == '{"a":"1","b":"2"}'


def test_the_empty_set_is_text_braces_and_hash_zero():
    assert identity({}) == (tags.UNTAGGED_TEXT, tags.UNTAGGED_HASH) == ("{}", 0)
    assert canonical_pairs({}) == ()


def test_the_hash_is_signed_blake2b_of_the_text_and_never_changes():
    digest = hashlib.blake2b(b'{"host":"web-3"}', digest_size=8).digest()
    assert tags_hash({"host": "web-3"}) == int.from_bytes(digest, "big", signed=True)
    # Stored series keys depend on this exact number: it must not change between releases.
    assert tags_hash({"host": "web-3"}) == 4514633023970187779


@few_examples
@given(st.data(), tag_sets)
def test_identity_is_order_free(data, tag_set):
    shuffled = dict(data.draw(st.permutations(list(tag_set.items()))))
    assert identity(shuffled) == identity(tag_set)
    assert tags_from_text(canonical_text(shuffled)) == tag_set


@few_examples
@given(tag_sets, tag_sets)
def test_distinct_sets_have_distinct_identities(first, second):
    if first != second:
        assert canonical_text(first) != canonical_text(second)
        assert tags_hash(first) != tags_hash(second)


@few_examples
@given(tag_sets.filter(bool))
def test_a_tagged_set_hashes_into_signed_64_bits_never_zero(tag_set):
    assert -(2**63) <= tags_hash(tag_set) < 2**63 and tags_hash(tag_set) != 0


# --- filters --------------------------------------------------------------------------------

WEB3 = {"host": "web-3", "dc": "eu"}
UNTAGGED = {}


@pytest.mark.parametrize(
    "text, on_web3, on_untagged",
    [
        ("host=web-3", True, False),
        ("host!=web-3", False, True),
        ("host=", False, True),
        ("host!=", True, False),
        ("host=~web-[0-9]+", True, False),
        ("host!~web-[0-9]+", False, True),
        ("host=~", False, True),
        ("host=~.*", True, True),
        ("host=~.+", True, False),
    ],
)
def test_each_operator_reads_a_missing_key_as_empty(text, on_web3, on_untagged):
    tag_filter = parse_filter(text)
    assert tag_filter.key == "host" and tag_filter.op in tags.FILTER_OPERATORS
    assert matches([tag_filter], WEB3) is on_web3
    assert matches([tag_filter], UNTAGGED) is on_untagged


@pytest.mark.parametrize("pattern", ["web", "eb-3", "web-", "b-", "^web", "3$"])
def test_a_regex_must_match_the_whole_value(pattern):
    assert not matches([parse_filter(f"host=~{pattern}")], WEB3)
    assert matches([parse_filter(f"host!~{pattern}")], WEB3)


def test_operands_may_hold_operator_characters():
    assert parse_filter("q=a=b").operand == "a=b"
    assert parse_filter("q=~a=~b").operand == "a=~b"
    assert parse_filter("q!=~x").op == "!="  # the value "~x"


def test_filters_are_anded():
    both = parse_filters(["host=web-3", "dc=~e."])
    assert matches(both, WEB3)
    assert not matches(both, {"host": "web-3", "dc": "us"})


@pytest.mark.parametrize(
    "text, says",
    [
        ("host", "'host' must be key=value, key!=value, key=~regex or key!~regex"),
        ("", "'' must be key=value"),
        ("host~x", "must be key=value"),
        ("=x", "key '' must start"),
        ("h st=x", "key 'h st' must start"),
        ("host=a,b", VALUE_MESSAGE + ", or empty for series without the key"),
        ("host=" + "a" * 256, VALUE_MESSAGE),
        ("host=~(", "'host=~(': bad regex: missing )"),
        ("host=~[z-a]", "bad regex: invalid character class range"),
        ("host=~(a)\\1", "bad regex"),  # a backreference: RE2 refuses what Python's re runs
        ("host=~(?=a)", "bad regex"),  # lookahead, likewise
        ("host=~" + "a" * 257, "a regex may be at most 256 characters (got 257)"),
    ],
)
def test_malformed_filters_are_refused_naming_the_filter(text, says):
    error = refusal(parse_filter, text)
    assert isinstance(error, ValueError) and error.field == "filter"
    assert says in error.reason


def test_filter_bounds_are_inclusive():
    assert parse_filter("host=" + "a" * 255).operand == "a" * 255
    assert parse_filter("host=~" + "a" * 256).regex.fullmatch("a" * 256)


def test_filter_lists_from_a_json_body():
    assert parse_filters(None) == ()
    assert parse_filters([]) == ()
    assert parse_filters(["", "host=a", ""]) == (parse_filter("host=a"),)  # empty: no filter
    assert refusal(parse_filters, "host=a", field="filters").field == "filters"
    assert "must be a string, not a number" in str(refusal(parse_filters, [5], field="filters"))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "host=web-3",
        "host=",
        "host!=",
        "dc=~e.*",
        "dc!~",
        "host=a,b",
        "host",
        "=x",
        "h st=x",
        "host~x",
        "host=" + "a" * 256,
        "host=~" + "a" * 257,
        "host=\x01",
        "a=b=c",
        "a!=~b",
    ],
)
def test_the_documented_filter_pattern_is_the_parser_rule(text):
    """FILTER_PATTERN (the OpenAPI document's) accepts a text exactly when the parser does (a
    regex aside, which must also be valid RE2)."""
    documented = re.match(FILTER_PATTERN, text) is not None
    try:
        parse_filters([text])
        parsed = True
    except ValueError:
        parsed = False
    assert documented == parsed


@pytest.mark.parametrize("text", ["", "host", "host,dc,status", "a,a", "a,b,c,d", "host,", "9x"])
def test_the_documented_group_by_pattern_is_the_parser_rule(text):
    documented = re.match(GROUP_BY_PATTERN, text) is not None
    try:
        parse_group_by(text)
        parsed = True
    except ValueError:
        parsed = False
    assert documented == parsed


def test_regexes_are_compiled_by_re2():
    assert type(parse_filter("host=~a+").regex).__module__.startswith("re2")


CATALOGUE = [
    (1, {"host": "web-1", "dc": "eu"}),
    (2, {"host": "web-2", "dc": "us"}),
    (3, {"dc": "eu"}),
    (4, {}),
    (5, {"host": "db-1", "dc": "eu"}),
]


def test_select_keeps_catalogue_order():
    assert select(parse_filters(["dc=eu", "host!~db-.*"]), CATALOGUE) == [1, 3]
    assert select((), CATALOGUE) == [1, 2, 3, 4, 5]
    assert select(parse_filters(["host="]), CATALOGUE) == [3, 4]


def test_select_judges_each_distinct_value_once(monkeypatch):
    seen = []
    real_test = tags.TagFilter.test
    monkeypatch.setattr(tags.TagFilter, "test", lambda f, v: seen.append(v) or real_test(f, v))
    catalogue = [(i, {"host": f"web-{i % 3}"}) for i in range(300)] + [(300, {})]
    assert len(select(parse_filters(["host=~web-[12]"]), catalogue)) == 200
    assert sorted(seen) == ["", "web-0", "web-1", "web-2"]


small_tags = st.dictionaries(st.sampled_from("abc"), st.sampled_from(["x", "y", "xy"]))
small_filters = st.builds(
    "{}{}{}".format,
    st.sampled_from("abc"),
    st.sampled_from(tags.FILTER_OPERATORS),
    st.sampled_from(["", "x", "y", "xy", "x.*", "y?"]),
)


@given(st.lists(small_tags, max_size=30), st.lists(small_filters, max_size=3))
def test_select_agrees_with_matches(tag_list, filter_texts):
    filters = parse_filters(filter_texts)
    catalogue = list(enumerate(tag_list))
    assert select(filters, catalogue) == [i for i, t in catalogue if matches(filters, t)]


@pytest.mark.parametrize(
    "pattern, matching", [("(a+)+$", 0), ("(x+x+)+y", 0), ("(a|aa)+[0-9]+", 10000)]
)
def test_a_catastrophic_pattern_over_10000_values_stays_fast(pattern, matching):
    # Each value is a long run then digits: exponential backtracking for Python's re.
    run = pattern[1]
    catalogue = [(i, {"k": run * 240 + f"{i:05d}"}) for i in range(10000)]
    started = time.perf_counter()
    chosen = select(parse_filters([f"k=~{pattern}"]), catalogue)
    elapsed = time.perf_counter() - started
    assert len(chosen) == matching
    assert elapsed < 5, f"{pattern} took {elapsed:.2f} s"  # generous: RE2 takes tens of ms


# --- group-by, headers and top-N order ------------------------------------------------------


def test_group_by_parses_text_and_lists():
    assert parse_group_by("host") == ("host",)
    assert parse_group_by("host,dc,status") == ("host", "dc", "status")
    assert parse_group_by(["dc", "host"]) == ("dc", "host")
    assert (
        parse_group_by("host,dc,host") == parse_group_by(["host", "dc", "host"]) == ("host", "dc")
    )
    assert parse_group_by(None) == parse_group_by("") == parse_group_by([]) == ()


@pytest.mark.parametrize(
    "raw, says",
    [
        ("a,b,c,d", "at most 3 keys (got 4)"),
        ("host,", "a tag key must not be empty"),
        ("9host", "key '9host' must start"),
        (["a", 5], "a tag key must be a string"),
        (["a,b"], "key 'a,b' must start"),
        (5, "must be a list of tag keys, not a number"),
    ],
)
def test_bad_group_by_is_refused(raw, says):
    error = refusal(parse_group_by, raw)
    assert error.field == "group_by" and says in error.reason


def test_group_keys_read_missing_keys_as_empty():
    assert group_key({"host": "web-3", "dc": "eu"}, ("dc", "host")) == ("eu", "web-3")
    assert group_key({"dc": "eu"}, ("host", "dc")) == ("", "eu")
    assert group_tags(("host", "dc"), ("", "eu")) == {"host": "", "dc": "eu"}


def test_column_headers_keep_group_by_order():
    assert column_header(("host",), ("web-3",)) == "host=web-3"
    assert column_header(("host", "dc"), ("web-3", "eu")) == "host=web-3;dc=eu"
    assert column_header(("dc", "host"), ("eu", "")) == "dc=eu;host="
    assert column_header(("host",), ("web-3",), name="page.views") == "page.views{host=web-3}"
    assert column_header(("host", "dc"), ("a", "b"), name="n") == "n{host=a;dc=b}"


def test_top_order_is_by_total_then_tag_values():
    totals = [(("b",), 5), (("a",), 5), (("c",), 9), (("",), 5), (("d",), 1)]
    assert [k for k, _ in order_groups(totals, "sum")] == [("c",), ("",), ("a",), ("b",), ("d",)]
    assert [k for k, _ in order_groups(totals, "min")] == [("d",), ("",), ("a",), ("b",), ("c",)]


def test_top_order_ties_compare_values_in_byte_order_key_by_key():
    totals = [(("é", "a"), 1), (("z", "b"), 1), (("z", "a"), 1), (("Z", "a"), 1)]
    assert [k for k, _ in order_groups(totals, "max")] == [
        ("Z", "a"),
        ("z", "a"),
        ("z", "b"),
        ("é", "a"),
    ]


def test_groups_without_a_total_come_last():
    totals = [(("b",), None), (("a",), None), (("c",), Decimal("0.1")), (("d",), Decimal("2"))]
    assert [k for k, _ in order_groups(totals, "avg")] == [("d",), ("c",), ("a",), ("b",)]
    assert [k for k, _ in order_groups(totals, "min")] == [("c",), ("d",), ("a",), ("b",)]


@given(st.dictionaries(st.tuples(values), st.integers(-3, 3)), st.sampled_from(["sum", "min"]))
def test_top_order_is_the_byte_order_of_total_and_values(totals, operation):
    sign = 1 if operation == "min" else -1
    expected = sorted(totals.items(), key=lambda p: (sign * p[1], p[0][0].encode()))
    assert order_groups(totals.items(), operation) == expected


# --- purity ---------------------------------------------------------------------------------


def test_the_module_imports_only_the_standard_library_and_re2():
    tree = ast.parse(Path(tags.__file__).read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    outside = {name for name in imported if name.split(".")[0] not in sys.stdlib_module_names}
    assert outside == {"re2"}
