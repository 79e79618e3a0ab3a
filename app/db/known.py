"""What a process remembers of the series it has written, so a write of known series costs no
catalogue lookup: (metric key, tags hash) → (metric id, series id, when last_seen was last
refreshed); a metric key is ``(tenant_id, name)``. A metric deleted and made again under its
name has a new id, which the entry does not match: the series is then looked up (and made)
afresh."""

import threading
from datetime import timedelta

from cachetools import LRUCache

TOUCH_EVERY = timedelta(hours=1)


class KnownSeries:
    """A bounded, thread-safe memory of series seen by this process."""

    def __init__(self, maxsize=200_000):
        self._entries = LRUCache(maxsize=maxsize)
        self._lock = threading.Lock()

    def has_all(self, key, hashes):
        """Whether every tag set of the metric ``key`` among ``hashes`` was seen."""
        with self._lock:
            return all((key, tags_hash) in self._entries for tags_hash in hashes)

    def get(self, key, metric_id, tags_hash):
        """The series id of a tag set of the metric ``metric_id`` (keyed ``key``), or None."""
        with self._lock:
            entry = self._entries.get((key, tags_hash))
        return entry[1] if entry is not None and entry[0] == metric_id else None

    def put(self, key, metric_id, tags_hash, series_id, now):
        """Remember a series, last seen ``now``."""
        with self._lock:
            self._entries[(key, tags_hash)] = (metric_id, series_id, now)

    def stale(self, key, tags_hash, now):
        """True (and noted as refreshed) when the series' last_seen was refreshed over an hour
        ago by this process."""
        with self._lock:
            entry = self._entries.get((key, tags_hash))
            if entry is None or now - entry[2] < TOUCH_EVERY:
                return False
            self._entries[(key, tags_hash)] = (entry[0], entry[1], now)
            return True
