"""A Redis storage for ``limits`` that costs one round trip per request instead of three.

limits' fixed window counts a hit (a Lua INCRBY + EXPIRE) and then, for the X-RateLimit
headers, reads the counter and its TTL back (GET, TTL). Here the script returns the count and
the remaining time together, and the two reads that follow in the same thread are answered
from that reply. Everything else is limits' RedisStorage.
"""

import threading
import time

from limits.storage import RedisStorage

# Count and expire in one step, and return the window's remaining milliseconds with the count.
_INCR_EXPIRE_PTTL = """
local current = redis.call("incrby", KEYS[1], ARGV[2])
if tonumber(current) == tonumber(ARGV[2]) then
    redis.call("expire", KEYS[1], ARGV[1])
end
return {current, redis.call("pttl", KEYS[1])}
"""
# Take ARGV[2] from a budget of ARGV[3] a window only if all of it fits: a refusal counts
# nothing. Returns {taken (0|1), the count, the window's remaining milliseconds (-2: none)}.
_TAKE_IF_FITS = """
local current = tonumber(redis.call("get", KEYS[1]) or "0")
local amount = tonumber(ARGV[2])
if current + amount > tonumber(ARGV[3]) then
    return {0, current, redis.call("pttl", KEYS[1])}
end
current = redis.call("incrby", KEYS[1], amount)
if tonumber(current) == amount then
    redis.call("expire", KEYS[1], ARGV[1])
end
return {1, current, redis.call("pttl", KEYS[1])}
"""
# A remembered reply is only for the reads of the same request, a moment later.
_MEMO_SECONDS = 1.0


class OneTripRedisStorage(RedisStorage):
    """limits' RedisStorage whose ``incr`` also answers the ``get`` and ``get_expiry`` after it."""

    def __init__(self, uri, **options):
        super().__init__(uri, **options)
        self._memo = threading.local()

    def initialize_storage(self, uri):
        """Register limits' scripts and ours."""
        super().initialize_storage(uri)
        self.lua_incr_expire_pttl = self.get_connection().register_script(_INCR_EXPIRE_PTTL)
        self.lua_take_if_fits = self.get_connection().register_script(_TAKE_IF_FITS)

    def take(self, key, expiry, limit, amount):
        """Count ``amount`` against ``limit`` only if it all fits in the window: (taken, the
        count, when the window ends as Unix time)."""
        taken, count, pttl = self.lua_take_if_fits(
            [self.prefixed_key(key)], [expiry, amount, limit]
        )
        ends_at = time.time() + (int(pttl) / 1000 if int(pttl) > 0 else expiry)
        return bool(taken), int(count), ends_at

    def incr(self, key, expiry, elastic_expiry=False, amount=1):
        """Count a hit; remember the count and the window's end for this thread's next reads."""
        if elastic_expiry:
            return super().incr(key, expiry, elastic_expiry, amount)
        count, pttl = self.lua_incr_expire_pttl([self.prefixed_key(key)], [expiry, amount])
        now = time.time()
        self._memo.entry = (key, int(count), now + max(int(pttl), 0) / 1000, now)
        return int(count)

    def _remembered(self, key):
        entry = getattr(self._memo, "entry", None)
        if entry is not None and entry[0] == key and time.time() - entry[3] < _MEMO_SECONDS:
            return entry
        return None

    def get(self, key):
        """The counter: from this thread's last hit on ``key`` if just made, else Redis."""
        entry = self._remembered(key)
        return entry[1] if entry else super().get(key)

    def get_expiry(self, key):
        """When the window ends: from this thread's last hit (then forgotten), else Redis."""
        entry = self._remembered(key)
        if entry is None:
            return super().get_expiry(key)
        self._memo.entry = None
        return entry[2]
