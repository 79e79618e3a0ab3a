"""The rules of dimensions: a point's tags, a series' identity, filters, group-by and top-N order.

Tags are string → string: keys match ``TAG_KEY_PATTERN``, values are 1-255 characters without
control characters, ``,`` or ``\\``, at most ``METRICS_MAX_TAGS`` per point. Every refusal is a
``TagError`` (a ValueError) whose ``field`` names the tag, filter or parameter.

A series is a metric plus its tag set, order-free: ``canonical_text`` (JSON, keys sorted, no
spaces) is what storage keeps and ``tags_hash`` (signed 64-bit BLAKE2b) is what it indexes; the
empty set is ``"{}"`` and hash 0, and no other set hashes to 0.

Filters see a series without the key as having the value "". So ``host=`` (an empty value is
allowed in a filter, never in a stored tag) selects the series without ``host`` and ``host!=``
those with it. Regexes are RE2 (linear time whatever the pattern), full match, ≤ 256 characters.
"""

import dataclasses
import functools
import hashlib
import json
import re
from collections.abc import Mapping

import re2

_KEY = r"[A-Za-z_][A-Za-z0-9_.-]{0,63}"
TAG_KEY_PATTERN = rf"^{_KEY}\Z"
KEY_RULE = "must start with a letter or '_' and hold 1-64 of A-Z, a-z, 0-9, '_', '.' or '-'"
VALUE_RULE = "value must be 1-255 characters without control characters, ',' or '\\'"
# The same rule as a pattern (for the OpenAPI document; _BAD_VALUE_CHAR is what checks, and
# also refuses unpaired surrogates, which no UTF-8 request can carry but ECMA-262 cannot name).
_VALUE_CHAR = r"[^\x00-\x1f\x7f-\x9f,\\]"
TAG_VALUE_PATTERN = rf"^{_VALUE_CHAR}{{1,255}}\Z"
# A filter string (the document's; a regex must also be valid RE2, which no pattern can say)
# and a query string's group_by; either may be empty, meaning none.
FILTER_PATTERN = rf"^({_KEY}(!?={_VALUE_CHAR}{{0,255}}|[=!]~[\s\S]{{0,256}}))?\Z"
GROUP_BY_PATTERN = rf"^({_KEY}(,{_KEY}){{0,2}})?\Z"
MAX_TAG_VALUE_LENGTH = 255
DEFAULT_MAX_TAGS = 16
MAX_REGEX_LENGTH = 256
MAX_GROUP_BY_KEYS = 3
FILTER_OPERATORS = ("=", "!=", "=~", "!~")
UNTAGGED_TEXT = "{}"
UNTAGGED_HASH = 0

_KEY_RE = re.compile(TAG_KEY_PATTERN)
# Control characters (Unicode Cc: C0, DEL, C1), the form body's separator, the backslash; and
# unpaired surrogates, which JSON can carry but UTF-8 storage cannot.
_BAD_VALUE_CHAR = re.compile(r"[\x00-\x1f\x7f-\x9f,\\\ud800-\udfff]")
# A key holds no '=' or '!', so the first of them starts the operator.
_FILTER_RE = re.compile(r"([^=!]*)(=~|!~|!=|=)(.*)", re.DOTALL)
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.never_capture = True  # only "does it match" is asked
_RE2_OPTIONS.log_errors = False  # a client's bad pattern is its 400, not our stderr
_JSON_KINDS = {
    bool: "a boolean",
    int: "a number",
    float: "a number",
    str: "a string",
    type(None): "null",
    list: "a list",
    tuple: "a list",
    dict: "an object",
}


class TagError(ValueError):
    """Bad tags, filter or group_by: ``field`` names what (``tags.host``, ``filter``),
    ``reason`` says why; ``str()`` is ``"field: reason"``, the 400 VALIDATION_ERROR message."""

    def __init__(self, field, reason):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _kind(value):
    """What a JSON value is, for a message ("a number", "an object")."""
    return _JSON_KINDS.get(type(value), "an object" if isinstance(value, Mapping) else "a value")


def _shown(text, limit=80):
    """Client text quoted for a message, cut short: an error never echoes a whole body."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def check_key(key, field="tags"):
    """``key`` if it is a valid tag key, else TagError under ``field``."""
    if not isinstance(key, str):
        raise TagError(field, f"a tag key must be a string, not {_kind(key)}")
    if not key:
        raise TagError(field, "a tag key must not be empty")
    if not _KEY_RE.match(key):
        raise TagError(field, f"key {_shown(key)} {KEY_RULE}")
    return key


def _check_value(value, field):
    """TagError under ``field`` (``tags.<key>``) unless ``value`` is a valid tag value."""
    if isinstance(value, Mapping | list | tuple):
        raise TagError(field, f"value must be a string, not {_kind(value)} (tags do not nest)")
    if not isinstance(value, str):
        number = isinstance(value, int | float) and not isinstance(value, bool)
        hint = f' (write "{value}")' if number else ""
        raise TagError(field, f"value must be a string, not {_kind(value)}{hint}")
    if not 1 <= len(value) <= MAX_TAG_VALUE_LENGTH or _BAD_VALUE_CHAR.search(value):
        raise TagError(field, VALUE_RULE)


def validate_tags(raw, max_tags=DEFAULT_MAX_TAGS, field="tags"):
    """A point's tags (None or an object of string → string) as a dict in key order; {} is the
    empty set. Raises TagError naming the first bad tag (``tags.host: value must be …``)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise TagError(
            field, f"must be an object of string keys to string values, not {_kind(raw)}"
        )
    if len(raw) > max_tags:
        raise TagError(field, f"at most {max_tags} tags per point (got {len(raw)})")
    for key, value in raw.items():
        check_key(key, field)
        _check_value(value, f"{field}.{key}")
    return {key: raw[key] for key in sorted(raw)}


def parse_tags_text(text, max_tags=DEFAULT_MAX_TAGS, field="tags"):
    """A form body's ``k:v,k:v`` as validated tags ("" is the empty set). A key holds no ':',
    so a value may (``url:http://x``); a value holds no ',' so the split is unambiguous."""
    if text == "":
        return {}
    tags = {}
    for entry in text.split(","):
        key, colon, value = entry.partition(":")
        if not colon:
            raise TagError(field, f"{_shown(entry)} must be key:value (tags=k:v,k:v)")
        if check_key(key, field) in tags:
            raise TagError(f"{field}.{key}", "given twice")
        tags[key] = value
    return validate_tags(tags, max_tags, field)


def canonical_pairs(tags):
    """The order-free form of a tag set (a mapping or pairs): its (key, value) pairs by key."""
    return tuple(sorted(dict(tags).items()))


def canonical_text(tags):
    """A tag set as the stable, unambiguous text storage keeps: JSON with sorted keys, no
    spaces, non-ASCII kept as UTF-8; ``"{}"`` for the empty set."""
    return json.dumps(dict(canonical_pairs(tags)), ensure_ascii=False, separators=(",", ":"))


def tags_from_text(text):
    """The tags dict back from ``canonical_text``."""
    return json.loads(text)


def identity(tags):
    """``(canonical_text, tags_hash)`` of a tag set, the text built once."""
    text = canonical_text(tags)
    if text == UNTAGGED_TEXT:
        return text, UNTAGGED_HASH
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    # Signed, because SQLite's INTEGER and MySQL's BIGINT are; 0 stays the empty set's alone.
    return text, int.from_bytes(digest, "big", signed=True) or 1


@functools.lru_cache(maxsize=4096)
def _cached_identity(items, max_tags, field):
    return identity(validate_tags(dict(items), max_tags, field))


def point_identity(raw, max_tags=DEFAULT_MAX_TAGS, field="tags"):
    """``(canonical_text, tags_hash)`` of a point's raw tags (None: untagged), validated; the
    sets a process sees again and again (most are) are validated and hashed once."""
    if raw is None:
        return UNTAGGED_TEXT, UNTAGGED_HASH
    if isinstance(raw, Mapping) and all(type(v) is str for v in raw.values()):
        try:
            return _cached_identity(tuple(raw.items()), max_tags, field)
        except TypeError:  # an unhashable key: validate_tags names it
            pass
    return identity(validate_tags(raw, max_tags, field))


def tags_hash(tags):
    """A tag set's stable signed 64-bit key (-2**63 … 2**63-1): the first 8 bytes of BLAKE2b over
    its UTF-8 canonical text, big-endian; 0 for the empty set and only for it."""
    return identity(tags)[1]


@dataclasses.dataclass(frozen=True)
class TagFilter:
    """One parsed filter: ``key``, ``op`` (one of FILTER_OPERATORS), ``operand`` (a value or a
    pattern) and, for ``=~``/``!~``, the compiled RE2 ``regex``."""

    key: str
    op: str
    operand: str
    regex: object = dataclasses.field(default=None, compare=False, repr=False)

    def test(self, value):
        """Whether a series whose ``key`` has ``value`` ("" when it has none) passes."""
        if self.regex is None:
            return (value == self.operand) == (self.op == "=")
        return (self.regex.fullmatch(value) is not None) == (self.op == "=~")


def _compile(pattern, text, field):
    """``pattern`` compiled by RE2, or TagError quoting the filter ``text``."""
    if len(pattern) > MAX_REGEX_LENGTH:
        raise TagError(
            field,
            f"{_shown(text)}: a regex may be at most {MAX_REGEX_LENGTH} "
            f"characters (got {len(pattern)})",
        )
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except (re2.error, UnicodeError) as exc:
        reason = exc.args[0] if exc.args and isinstance(exc, re2.error) else "not valid text"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise TagError(field, f"{_shown(text)}: bad regex: {reason}") from None


def parse_filter(text, field="filter"):
    """``key=value``, ``key!=value``, ``key=~regex`` or ``key!~regex`` as a TagFilter. The value
    may be empty (series without the key); a regex must match the whole value."""
    if not isinstance(text, str):
        raise TagError(field, f"a filter must be a string, not {_kind(text)}")
    parts = _FILTER_RE.fullmatch(text)
    if not parts:
        raise TagError(
            field, f"{_shown(text)} must be key=value, key!=value, key=~regex or key!~regex"
        )
    key, op, operand = parts.groups()
    if not _KEY_RE.match(key):
        raise TagError(field, f"{_shown(text)}: key {_shown(key)} {KEY_RULE}")
    if op in ("=~", "!~"):
        return TagFilter(key, op, operand, _compile(operand, text, field))
    if len(operand) > MAX_TAG_VALUE_LENGTH or _BAD_VALUE_CHAR.search(operand):
        # No stored tag could ever equal it: most likely a mistake such as "host=a,b".
        raise TagError(field, f"{_shown(text)}: {VALUE_RULE}, or empty for series without the key")
    return TagFilter(key, op, operand)


def parse_filters(texts, field="filter"):
    """Every ``filter`` parameter (or a JSON body's ``filters`` list) as a tuple of TagFilters,
    to be AND-ed; None, [] or an empty string is no filter."""
    if texts is None:
        return ()
    if not isinstance(texts, list | tuple):
        raise TagError(field, f"must be a list of filter strings, not {_kind(texts)}")
    return tuple(parse_filter(text, field) for text in texts if text != "")


def matches(filters, tags):
    """Whether a series with ``tags`` passes every filter (a missing key reads "")."""
    return all(tag_filter.test(tags.get(tag_filter.key, "")) for tag_filter in filters)


def select(filters, catalogue):
    """The ids of the ``(series_id, tags)`` pairs passing every filter, in catalogue order. Each
    filter judges each distinct value of its key once: RE2 runs per value, never per series."""
    verdicts = [{} for _ in filters]
    chosen = []
    for series_id, tags in catalogue:
        if all(
            _verdict(tag_filter, seen, tags.get(tag_filter.key, ""))
            for tag_filter, seen in zip(filters, verdicts, strict=True)
        ):
            chosen.append(series_id)
    return chosen


def _verdict(tag_filter, seen, value):
    """``tag_filter.test(value)``, remembered in ``seen``."""
    verdict = seen.get(value)
    if verdict is None:
        verdict = seen[value] = tag_filter.test(value)
    return verdict


def parse_group_by(raw, field="group_by"):
    """``k1,k2`` (a query string) or ``["k1", "k2"]`` (a JSON body) as a tuple of at most 3
    tag keys (a key given twice counts once); None, "" or [] is no grouping."""
    if raw is None or raw == "":
        return ()
    if isinstance(raw, str):
        keys = raw.split(",")
    elif isinstance(raw, list | tuple):
        keys = list(raw)
    else:
        raise TagError(field, f"must be a list of tag keys, not {_kind(raw)}")
    if len(keys) > MAX_GROUP_BY_KEYS:
        raise TagError(field, f"at most {MAX_GROUP_BY_KEYS} keys (got {len(keys)})")
    return tuple(dict.fromkeys(check_key(key, field) for key in keys))


def group_key(tags, keys):
    """The group a series with ``tags`` falls in: its value of each key, "" where it has none."""
    return tuple(tags.get(key, "") for key in keys)


def group_tags(keys, values):
    """A group's ``"tags"`` object in an answer: each group_by key with its value."""
    return dict(zip(keys, values, strict=True))


def column_header(keys, values, name=None):
    """A group's CSV column: ``k1=v1`` or ``k1=v1;k2=v2`` (keys in group_by order); for a query
    of several names ``name{k1=v1}`` or ``name{k1=v1;k2=v2}``."""
    pairs = ";".join(f"{key}={value}" for key, value in zip(keys, values, strict=True))
    return pairs if name is None else f"{name}{{{pairs}}}"


def order_groups(totals, operation):
    """``(group_key, total)`` pairs in top-N order: the largest total over the range first (the
    smallest for ``min``), equal totals by tag values in byte order, groups without a total
    (no points in the range) last."""
    # Python orders str by code point, which is UTF-8 byte order.
    by_values = sorted(totals, key=lambda pair: pair[0])
    ranked = [pair for pair in by_values if pair[1] is not None]
    # A stable sort, reversed or not, keeps equal totals in their tag-value order.
    ranked.sort(key=lambda pair: pair[1], reverse=operation != "min")
    return ranked + [pair for pair in by_values if pair[1] is None]
