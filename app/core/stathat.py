"""StatHat compatibility: how StatHat's stat names map to ours, and how its requests read.

StatHat names may hold any character but ``~``; ours are ``^[A-Za-z0-9._-]{1,255}$``. The one
rule, used by every StatHat route: trim the name, then replace every run of characters outside
our alphabet by one ``_``. "page views" → ``page_views``; "API: hits/sec" → ``API_hits_sec``;
"café" → ``caf_``. Names that differ only in such runs collide ("page views", "page  views",
"page/views" and "page_views" are all ``page_views``). An empty result, or one over 255
characters, is refused.

``~`` fans out: "messages sent~total,europe" is "messages sent total" and "messages sent
europe" (the prefix, a space, each part), each then mapped.
"""

import re
import secrets

from app.core.constants import NAME_CHARS, NAME_PATTERN, WHITESPACE_CHARS

_OUTSIDE = re.compile(rf"[^{NAME_CHARS}]+")
_NAME_RE = re.compile(NAME_PATTERN)
STAT_KEY_PREFIX = "gs_"
STAT_KEY_RE = re.compile(r"^gs_[A-Za-z0-9_-]{43}\Z")
# The stats that map to at least one name (the OpenAPI document's pattern, searched, not
# anchored at the end): something not blank before the first ``~``, or a part after it that
# is not blank. The 255-character bound on each mapped name is not in it.
STAT_PATTERN = f"^[^~]*[^~{WHITESPACE_CHARS}]|^[^~]*~[\\s\\S]*[^,{WHITESPACE_CHARS}]"


class BadStatName(ValueError):
    """A StatHat name that maps to no valid metric name."""


def metric_name(stat):
    """Our metric name for a StatHat stat name (see the module's rule)."""
    name = _OUTSIDE.sub("_", stat.strip())
    if not _NAME_RE.match(name):
        raise BadStatName(f"stat name {stat[:300]!r} maps to no metric name (1-255 characters)")
    return name


def fan_out(stat):
    """The stat names a StatHat name posts to: itself, or ``prefix part`` for each part
    after a ``~``."""
    prefix, tilde, parts = stat.partition("~")
    if not tilde:
        return [stat]
    return [f"{prefix} {part}" for part in parts.split(",") if part.strip()] or [prefix]


def metric_names(stat):
    """Our metric names for a StatHat name, fanned out and mapped, each once."""
    return list(dict.fromkeys(metric_name(name) for name in fan_out(stat)))


def generate_stat_key():
    """A new raw stat key: ``gs_`` and 43 URL-safe characters (256 random bits), the form
    STAT_KEY_RE accepts."""
    return STAT_KEY_PREFIX + secrets.token_urlsafe(32)
