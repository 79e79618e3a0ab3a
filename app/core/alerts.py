"""Alerts' rules with no I/O: the kinds, windows and comparisons, the notification targets, what
a window's value means for an alert's state, and a notice's body and signature.

- ``value``: the operation over the last closed window, compared (``>`` or ``<``) with a
  threshold; an empty window (no value: avg, min or max of nothing) never fires.
- ``delta``: the operation over the last closed window against the same window ``compare``
  earlier, changed by more than ``percent`` in ``direction``; a baseline of 0 counts any rise
  as infinite (and a fall from 0 is impossible), and a missing value on either side never fires.
- ``data``: no point at all in the window (data stopped arriving).

A window is closed at the minute boundary: [boundary - window, boundary), the current minute
never in it.
"""

import hashlib
import hmac
import ipaddress
import json
import math
import re
import secrets
import socket
from dataclasses import dataclass
from datetime import timedelta

KINDS = ("value", "delta", "data")
ALERT_WINDOWS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "3h": 10800, "1d": 86400,
                 "1w": 604800}  # fmt: skip
COMPARES = {"1h": 3600, "1d": 86400, "1w": 604800, "4w": 2419200}
CONDITIONS = (">", "<")
DIRECTIONS = ("up", "down", "either")
STATES = ("ok", "firing")
OK, FIRING = STATES
MAX_REPEAT_MINUTES = 10080  # a week
MAX_TARGETS = 10
MAX_PERCENT = 1e6
MAX_TARGET_LENGTH = 2048
SECRET_BYTES = 32

# Each kind's own fields (the others are refused for it).
KIND_FIELDS = {
    "value": ("operation", "condition", "threshold"),
    "delta": ("operation", "percent", "direction", "compare"),
    "data": (),
}
RULE_FIELDS = sorted({name for names in KIND_FIELDS.values() for name in names})
KIND_REQUIRED = {"value": ("condition", "threshold"), "delta": ("percent",), "data": ()}
KIND_DEFAULTS = {"delta": {"direction": "either", "compare": "1d"}}

# A target: ``webhook:`` and an http(s) URL, or ``email:`` and an address (ASCII, no blanks).
_PORT = "([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
_HOST = "[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*"
WEBHOOK_PATTERN = f"^webhook:https?://{_HOST}(:{_PORT})?(/[\\x21-\\x7e]*)?\\Z"
EMAIL_PATTERN = (
    "^email:[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]{1,63}(\\.[A-Za-z0-9-]{1,63})+\\Z"
)
TARGET_RULE = (
    "Must be webhook:<http(s) URL> or email:<address>; a webhook to a private, loopback or "
    "link-local host only with ALERTS_ALLOW_PRIVATE_TARGETS=true."
)
_WEBHOOK = re.compile(WEBHOOK_PATTERN)
_EMAIL = re.compile(EMAIL_PATTERN)
_URL_HOST = re.compile(r"^https?://([^/:]+)")


@dataclass(frozen=True)
class Target:
    """Where a notice goes: ``channel`` webhook (``address`` a URL) or email (an address)."""

    channel: str
    address: str

    @property
    def text(self):
        """As the API writes it."""
        return f"{self.channel}:{self.address}"


def parse_target(text):
    """The Target of ``webhook:…`` or ``email:…`` text, or None when it is neither."""
    if not isinstance(text, str) or len(text) > MAX_TARGET_LENGTH:
        return None
    if _WEBHOOK.match(text):
        return Target("webhook", text.removeprefix("webhook:"))
    if _EMAIL.match(text):
        return Target("email", text.removeprefix("email:"))
    return None


def webhook_host(url):
    """The host name of a webhook URL."""
    return _URL_HOST.match(url).group(1)


def literal_address(host):
    """The IP address a host name spells (``127.0.0.1``, and the forms resolvers read too:
    ``2130706433``, ``0x7f.1``), or None for a name to look up."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.ip_address(socket.inet_aton(host))
    except OSError:
        return None


def is_public_address(address):
    """Whether an IP address is one a webhook may reach without ALERTS_ALLOW_PRIVATE_TARGETS."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def private_host(host):
    """Whether a webhook host is private by its name alone (loopback names, private or
    loopback address literals); names are looked up, and judged again, at each send."""
    lowered = host.lower().rstrip(".")
    if lowered == "localhost" or lowered.endswith(".localhost"):
        return True
    address = literal_address(host)
    return address is not None and not is_public_address(address)


def target_problem(text, allow_private):
    """Why ``text`` is not a target this service may notify, or None."""
    target = parse_target(text)
    if target is None:
        return TARGET_RULE
    if (
        target.channel == "webhook"
        and not allow_private
        and private_host(webhook_host(target.address))
    ):
        return (
            "A webhook to a private, loopback or link-local host needs "
            "ALERTS_ALLOW_PRIVATE_TARGETS=true."
        )
    return None


def new_secret():
    """A webhook signing secret: 64 hex characters (256 bits)."""
    return secrets.token_hex(SECRET_BYTES)


def signature(secret, timestamp, body):
    """``sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`` with the alert's secret (``body``
    bytes, as sent)."""
    message = f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


# -- evaluation


def closed_window(now, window):
    """[start, end) of the last closed ``window`` at ``now``: it ends at the minute boundary."""
    end = now.replace(second=0, microsecond=0)
    return end - timedelta(seconds=ALERT_WINDOWS[window]), end


def compare_shift(compare):
    """How much earlier a delta alert's baseline window is."""
    return timedelta(seconds=COMPARES[compare])


def value_fires(value, condition, threshold):
    """Whether a value alert fires: a value beyond the threshold (an empty window never)."""
    if value is None:
        return False
    return value > threshold if condition == ">" else value < threshold


def change_percent(value, baseline):
    """How much ``value`` changed from ``baseline``, in percent (inf for a rise from 0), or
    None when either is missing."""
    if value is None or baseline is None:
        return None
    if baseline == 0:
        return math.inf if value > 0 else (-math.inf if value < 0 else 0.0)
    return (value - baseline) / abs(baseline) * 100


def delta_fires(value, baseline, percent, direction):
    """Whether a delta alert fires: a change of more than ``percent`` in ``direction``."""
    change = change_percent(value, baseline)
    if change is None:
        return False
    if direction == "up":
        return change > percent
    if direction == "down":
        return -change > percent
    return abs(change) > percent


def data_fires(count):
    """Whether a data alert fires: no point at all in the window."""
    return not count


def finite_or_none(value):
    """A number fit for JSON (an infinite or NaN one as None)."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    value = float(value)
    return value if math.isfinite(value) else None


def notice_body(notice_id, alert, state, value, baseline, evaluated_at, url, test=False):
    """A notice's JSON body (bytes, as sent and signed): ``alert`` is the API's view of it;
    a test notice says ``"test": true``."""
    body = {
        "id": notice_id,
        "alert": alert["id"],
        "metric": alert["metric"],
        "kind": alert["kind"],
        "state": state,
        "value": finite_or_none(value),
    }
    if alert["kind"] == "value":
        body["threshold"] = alert["threshold"]
    if alert["kind"] == "delta":
        body["baseline"] = finite_or_none(baseline)
    body.update(window=alert["window"], evaluated_at=evaluated_at, url=url)
    if test:
        body["test"] = True
    return json.dumps(body, separators=(",", ":")).encode()


def notice_text(body):
    """A notice as a plain-text email: (subject, text) with the same facts as the JSON."""
    facts = json.loads(body)
    what = "FIRING" if facts["state"] == FIRING else "resolved (ok)"
    subject = f"[Glowing Fiesta] alert {facts['alert']} on {facts['metric']}: {what}"
    lines = [f"Alert {facts['alert']} ({facts['kind']}) on metric {facts['metric']} is {what}."]
    lines += [f"{key}: {'' if value is None else value}" for key, value in facts.items()]
    return subject, "\n".join(lines) + "\n"
