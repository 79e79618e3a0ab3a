"""Tenants: every key belongs to one, and names, metrics, series, stat keys and listings are
per tenant. A tenant's name is operator-made (``flask tenants create``) and doubles as a label
on /metrics; its limits fall back to the settings' defaults where it sets none. Pure values;
the store keeps them."""

import re
from dataclasses import dataclass

DEFAULT_TENANT = "default"
DEFAULT_TENANT_ID = 1
TENANT_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}\Z"
TENANT_NAME_RULE = (
    "must be 1-64 characters of a-z, 0-9, '_' or '-', starting with a letter or digit"
)
_NAME_RE = re.compile(TENANT_NAME_PATTERN)


def valid_name(name):
    """Whether ``name`` may name a tenant."""
    return isinstance(name, str) and _NAME_RE.match(name) is not None


@dataclass(frozen=True)
class Tenant:
    """A tenant and its own limits (None: the setting's default; points_per_minute 0: none)."""

    id: int
    name: str
    max_metrics: int | None = None
    max_series: int | None = None
    points_per_minute: int | None = None

    def limits(self, config):
        """{"max_metrics", "max_series", "points_per_minute"} in force under ``config``."""
        return {
            "max_metrics": _or(self.max_metrics, config["METRICS_MAX_METRICS"]),
            "max_series": _or(self.max_series, config["TENANT_MAX_SERIES"]),
            "points_per_minute": _or(self.points_per_minute, config["TENANT_POINTS_PER_MINUTE"]),
        }


def _or(value, default):
    return default if value is None else value


DEFAULT = Tenant(DEFAULT_TENANT_ID, DEFAULT_TENANT)
