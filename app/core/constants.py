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
DECIMAL_PATTERN = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\Z"
COUNTER_DEFAULT_VALUE = 1.0
# How deep a JSON body may nest: a batch item's tags are 4 levels down; deeper is refused (400)
# before anything walks it.
MAX_JSON_DEPTH = 16

OPERATIONS = ("sum", "count", "avg", "min", "max")
DEFAULT_OPERATION = {"counter": "sum", "value": "avg"}
WINDOWS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400}
WINDOW_ALIASES = {"minute": "1m", "hour": "1h", "day": "1d"}
FILLS = ("zero", "none")

# Idempotency-Key: 1-255 visible ASCII characters, remembered per API key for a day.
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}\Z"
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
