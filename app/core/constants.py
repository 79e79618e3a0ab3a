"""The domain's rules in one place: metric types, names, values, operations and windows."""

METRIC_TYPES = ("counter", "value")
NAME_CHARS = "A-Za-z0-9._-"  # the name alphabet; every one of them sorts below "{"
NAME_PATTERN = rf"^[{NAME_CHARS}]{{1,255}}\Z"
# The names starting with p are exactly p <= name < p + AFTER_NAME_ALPHABET in binary order.
AFTER_NAME_ALPHABET = "{"
# A deleted metric's row is renamed "~deleted~<id>": "~" is outside the alphabet, no clash.
TOMBSTONE_PREFIX = "~deleted~"
# Rollup tiers and the seconds each row covers.
MINUTE, HOUR = "minute", "hour"
TIER_SECONDS = {MINUTE: 60, HOUR: 3600}
NAME_RULE = "Must be 1-255 characters of A-Z, a-z, 0-9, '.', '_' or '-'."
MAX_ABS_VALUE = 1e16
# Decimal text, as a form body or query string carries a number ("-1.5e2"; not "nan", "0x10").
DECIMAL = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"
DECIMAL_PATTERN = rf"^{DECIMAL}\Z"
# What str.strip() takes off, written out so that every regular expression engine reads it the
# same (Python's \s and ECMA-262's \s differ); the ASCII part alone for text that must be ASCII.
WHITESPACE_CHARS = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
WHITESPACE = f"[{WHITESPACE_CHARS}]"
ASCII_WHITESPACE = r"[\t-\r\x1c-\x20]"
# Decimal text as a form field or query string may carry it: blanks around are ignored.
DECIMAL_TEXT_PATTERN = rf"^{WHITESPACE}*{DECIMAL}{WHITESPACE}*\Z"


def _timestamp_pattern():
    """The text a time may be (timeutil.parse_timestamp): decimal Unix seconds or
    milliseconds, or ISO 8601 — a real date of the years 1–9999, extended (2026-11-23,
    2026-W48-1) or basic (20261123, 2026W481), then optionally ``T``, ``t`` or a space and a
    time (hours, minutes, seconds, a fraction after ``.`` or ``,``; extended or basic) with an
    offset (``Z``, ``z``, ``±hh``, ``±hh:mm``, ``±hhmm``, or, after a calendar date, one whose
    ``+`` arrived as a space) — all ASCII, blanks around ignored."""
    year = "(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
    leap_year = "([0-9]{2}(0[48]|[2468][048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00)"
    hour, minute = "([01][0-9]|2[0-3])", "[0-5][0-9]"

    def calendar(dash):
        months = (
            f"(0[13578]|1[02]){dash}(0[1-9]|[12][0-9]|3[01])",
            f"(0[469]|11){dash}(0[1-9]|[12][0-9]|30)",
            f"02{dash}(0[1-9]|1[0-9]|2[0-8])",
        )
        return f"{year}{dash}({'|'.join(months)})|{leap_year}{dash}02{dash}29"

    def week(dash):  # week 53 exists in some years only: left out
        return f"{year}{dash}W(0[1-9]|[1-4][0-9]|5[0-2])({dash}[1-7])?"

    def time(fraction):
        return (
            f"{hour}(:{minute}(:{minute}({fraction}[0-9]+)?)?"
            f"|{minute}({minute}({fraction}[0-9]+)?)?)?"
        )

    offset = f"({time('[.,]')}([Zz]|[+-]{hour}(:?{minute})?)?)"
    spaced_offset = f"({time('[.]')} {hour}(:?{minute})?)"  # "+01:00" unencoded in a query
    iso = (
        f"({calendar('-')}|{calendar('')})([Tt ]({offset}|{spaced_offset}))?"
        f"|({week('-')}|{week('')})([Tt ]{offset})?"
    )
    return f"^{ASCII_WHITESPACE}*({DECIMAL}|{iso}){ASCII_WHITESPACE}*\\Z"


TIMESTAMP_TEXT_PATTERN = _timestamp_pattern()
COUNTER_DEFAULT_VALUE = 1.0
# How deep a JSON body may nest: a batch item's tags are 4 levels down; deeper is refused (400)
# before anything walks it.
MAX_JSON_DEPTH = 16

# Percentiles of value metrics: the quantile each names (nearest rank, from the sketches).
PERCENTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
OPERATIONS = ("sum", "count", "avg", "min", "max", *PERCENTILES)
DEFAULT_OPERATION = {"counter": "sum", "value": "avg"}
WINDOWS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400}
WINDOW_ALIASES = {"minute": "1m", "hour": "1h", "day": "1d"}
FILLS = ("zero", "none")

# Idempotency-Key: 1-255 visible ASCII characters, remembered per API key for a day.
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}\Z"
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
