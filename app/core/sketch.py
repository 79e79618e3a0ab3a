"""Mergeable percentile sketches of value metrics: DDSketch's logarithmic buckets over one flat
integer key space, so any engine can keep a sketch as a map key → count and merge by adding.

The mapping is ``ddsketch.LogarithmicMapping(relative_accuracy=0.0099)`` written out: the same
gamma = (1 + α) / (1 − α) and the same bucket (γ^(i−1), γ^i] for i = ⌈log_γ |v|⌉ with the same
representative 2·γ^i / (1 + γ). The package computes log2(v)·(ln 2 / ln γ); we compute
ln(v)·(1 / ln γ), the same number up to an ulp, because ClickHouse's log() can do the same.
The key folds the sign in: ``key = sign(v) · clamp(i + OFFSET, 1, MAX_KEY)``, so 0 is exactly
zero (0.0 and −0.0, nothing else), integer order is value order, and |key| ≤ 2910 fits Int16.

Accuracy. α = 0.99 %, not 1 %. The representative is within α of every value of its bucket,
and within α of a bucket edge on either side, so a value an engine puts one bucket off stays
within 1 % while it lies within ~1e-4 (relative) of the edge; engines' log() differ by ulps,
which moves the edge by ~1e-13. The margin costs 1 % more buckets. A nearest-rank quantile is
the representative of the bucket holding rank ⌈q·n⌉, which also holds the exact quantile.

Range. |v| in [1e-9, 1e16] gets keys 2 … 2909, one per bucket, none shared; ingest refuses
|v| > 1e16. Smaller magnitudes (|v| ≤ 0.992e-9, down to 5e-324) collapse into key ±1 (its
representative is ±0.982e-9), keeping their sign, never into zero; magnitudes past
1.0077e16 would collapse into ±2910. γ = 1.01999798000202.

ClickHouse (``clickhouse_key_sql("value")``; ``sign(0) = 0`` gives key 0 for zero, and the
``greatest`` inside log keeps log(0) = −inf away from toInt32)::

    toInt16(sign(value) * least(2910, greatest(1,
        toInt32(ceil(log(greatest(abs(value), 1e-300)) * 50.50340046192389)) + 1048)))

Encoding (``Sketch.encode``, for BLOB columns): a frame — byte 0 the version (2), byte 1 the
width of a count (1, 2, 4 or 8 bytes: the smallest that holds the largest), bytes 2–3 the
number n of keys (little-endian uint16), then the n keys ascending as little-endian int16,
then the n counts as little-endian unsigned ints of that width. 604 bytes for 200 small
counts; delta+varint would take 402 but decodes 3× slower in Python, while this one decodes
with array.frombytes. At most 5,821 keys × 10 bytes + 4 = 58,214 bytes. A stored sketch is
one or more frames one after the other: their merge. A database that cannot merge two
sketches can still append one to another (MySQL's CONCAT), so a writer adds its points to a
row without reading it first, and the frames are merged when read (``merge_all``) or
compacted (``compact``).

Speeds: ``python scripts/bench_sketch.py`` (what it prints moves with the machine's load).
"""

import math
import struct
import sys
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Sequence
from fractions import Fraction
from functools import lru_cache
from itertools import accumulate, chain, compress, repeat
from operator import index as as_integer
from operator import mul

RELATIVE_ACCURACY = 0.0099  # SPEC allows 1 %; 0.01 % kept for engines' floating-point drift
_GAMMA_MANTISSA = 2 * RELATIVE_ACCURACY / (1 - RELATIVE_ACCURACY)
GAMMA = 1 + _GAMMA_MANTISSA
MULTIPLIER = 1 / math.log1p(_GAMMA_MANTISSA)  # 1 / ln γ, as ddsketch computes it
MIN_MAGNITUDE = 1e-9
MAX_MAGNITUDE = 1e16
OFFSET = 1048  # 1 − ⌊ln(1e-9)·MULTIPLIER⌋: 1e-9 gets key 2, key 1 is the collapse bucket below
MAX_KEY = 2910  # one past the key of 1e16, so 1e16 itself never collapses
_TO_REPRESENTATIVE = 2 / (1 + GAMMA)
_CLICKHOUSE_KEY = (
    "toInt16(sign({value}) * least({max_key}, greatest(1, "
    "toInt32(ceil(log(greatest(abs({value}), 1e-300)) * {multiplier!r})) + {offset})))"
)

_VERSION = 2
_HEADER = 4  # version, width, n (uint16)
_COUNT_TYPES = {1: "B", 2: "H", 4: "I", 8: "Q"}
_BIG_ENDIAN_HOST = sys.byteorder == "big"
_FEW = 24  # up to this many values, _count_few beats the bulk path
_DENSE_FROM = 3000  # keys in all: merge_all's list of slots is faster from ~15 sketches of 200
_SLOT_KEYS = tuple(chain(range(MAX_KEY + 1), range(-MAX_KEY, 0)))


def key_of(value: float) -> int:
    """The sketch key of a finite number: 0 for zero, ±(bucket index + OFFSET) otherwise."""
    if value == 0:
        return 0
    if not math.isfinite(value):
        raise ValueError(f"a sketch takes finite numbers, not {value!r}")
    key = min(MAX_KEY, max(1, math.ceil(math.log(abs(value)) * MULTIPLIER) + OFFSET))
    return key if value > 0 else -key


def value_of(key: int) -> float:
    """The representative value of a key's bucket (0.0 for key 0)."""
    if key == 0:
        return 0.0
    magnitude = math.exp((abs(key) - OFFSET) / MULTIPLIER) * _TO_REPRESENTATIVE
    return magnitude if key > 0 else -magnitude


def clickhouse_key_sql(column: str) -> str:
    """The ClickHouse expression computing ``key_of`` of a Float64 column or expression."""
    return _CLICKHOUSE_KEY.format(
        value=column, max_key=MAX_KEY, multiplier=MULTIPLIER, offset=OFFSET
    )


def nearest_rank(q: float, n: int) -> int:
    """Rank ⌈q·n⌉ (1-based) with q read as the decimal it prints as: p90 of 10 values is rank 9
    (the double 0.9 is a hair above 9/10, so exact arithmetic on it would give 10)."""
    numerator, denominator = _as_ratio(q)
    return -(-n * numerator // denominator)


@lru_cache(maxsize=256)
def _as_ratio(q: float) -> tuple[int, int]:
    """``q`` as numerator and denominator, checked to be in (0, 1]."""
    try:
        ratio = Fraction(str(q))
    except (ValueError, ZeroDivisionError):
        ratio = None
    if ratio is None or not 0 < ratio <= 1:
        raise ValueError(f"a quantile is in (0, 1], not {q!r}")
    return ratio.numerator, ratio.denominator


class Sketch:
    """Counts of values per key; merging adds counts, so it is exact and order-free."""

    __slots__ = ("counts",)

    def __init__(self, counts: dict[int, int] | None = None):
        """An empty sketch, or one over ``counts`` (key → count, taken as given)."""
        self.counts = {} if counts is None else counts

    @classmethod
    def of(cls, values: Iterable[float]) -> "Sketch":
        """The sketch of some values."""
        return cls(_count_keys(values))

    @property
    def count(self) -> int:
        """How many values the sketch holds."""
        return sum(self.counts.values())

    def add(self, value: float, count: int = 1) -> None:
        """Add ``value`` ``count`` times."""
        if as_integer(count) < 1:
            raise ValueError(f"a count is at least 1, not {count!r}")
        key = key_of(value)
        self.counts[key] = self.counts.get(key, 0) + count

    def extend(self, values: Iterable[float]) -> None:
        """Add each of ``values`` once."""
        self.merge(Sketch(_count_keys(values)))

    def merge(self, other: "Sketch") -> None:
        """Add ``other``'s counts to this sketch's."""
        counts = self.counts
        get = counts.get
        for key, count in other.counts.items():
            counts[key] = get(key, 0) + count

    def quantile(self, q: float) -> float | None:
        """The representative of the value at rank ⌈q·n⌉ in value order; None when empty."""
        keys = sorted(self.counts)
        return _quantile(keys, map(self.counts.__getitem__, keys), q)

    def encode(self) -> bytes:
        """The compact, canonical binary form: one frame (see the module docstring)."""
        counts = self.counts
        keys = sorted(counts)
        largest = max(counts.values(), default=0)
        width = next((w for w in _COUNT_TYPES if largest < 1 << (8 * w)), None)
        if width is None:
            raise OverflowError(f"a count of {largest} does not fit UInt64")
        n = len(keys)
        layout = f"<BBH{n}h{n}{_COUNT_TYPES[width]}"
        return struct.pack(layout, _VERSION, width, n, *keys, *map(counts.__getitem__, keys))

    @classmethod
    def decode(cls, blob: bytes) -> "Sketch":
        """The sketch of the frames ``encode`` wrote (merged); ValueError for anything else
        (checked key by key)."""
        frames = _frames(blob)
        for keys, counts in frames:
            if len(set(keys)) != len(keys):
                raise ValueError("an encoded sketch repeats a key")
            if keys and (min(counts) < 1 or min(keys) < -MAX_KEY or max(keys) > MAX_KEY):
                raise ValueError("an encoded sketch with a key out of range or a count of 0")
        return cls(_sum_counts(frames))

    def copy(self) -> "Sketch":
        """A sketch with the same counts, merged into without changing this one."""
        return Sketch(dict(self.counts))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sketch) and self.counts == other.counts

    def __repr__(self) -> str:
        return f"Sketch(count={self.count}, keys={len(self.counts)})"


class Exact:
    """The values themselves, for an exact nearest-rank quantile (a query over raw points
    only); merged with a Sketch it becomes one."""

    __slots__ = ("values",)

    def __init__(self, values: Iterable[float] = ()):
        self.values = list(values)

    @property
    def count(self) -> int:
        """How many values it holds."""
        return len(self.values)

    def copy(self) -> "Exact":
        """The same values, merged into without changing these."""
        return Exact(self.values)

    def quantile(self, q: float) -> float | None:
        """The value at rank ⌈q·n⌉ in value order; None when empty."""
        rank = nearest_rank(q, len(self.values))
        if not self.values:
            return None
        self.values.sort()
        return self.values[rank - 1]

    def to_sketch(self) -> Sketch:
        """The sketch of these values."""
        return Sketch.of(self.values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Exact) and sorted(self.values) == sorted(other.values)

    def __repr__(self) -> str:
        return f"Exact(count={self.count})"


def combine(mine: "Sketch | Exact | None", theirs: "Sketch | Exact | None"):
    """``mine`` with ``theirs`` added (either may be None): exact while both are, a Sketch
    once either is. ``mine`` may be changed and returned; ``theirs`` never is."""
    if theirs is None:
        return mine
    if mine is None:
        return theirs.copy()
    if isinstance(mine, Exact) and isinstance(theirs, Exact):
        mine.values.extend(theirs.values)
        return mine
    if isinstance(mine, Exact):
        mine = mine.to_sketch()
    mine.merge(theirs if isinstance(theirs, Sketch) else theirs.to_sketch())
    return mine


def merge_encoded(a: bytes, b: bytes) -> bytes:
    """``encode`` of the merge of two encoded sketches, without building Sketch objects."""
    return Sketch(_sum_counts(_frames(a) + _frames(b))).encode()


def compact(blob: bytes) -> bytes:
    """A stored sketch as one frame (``blob`` itself when it is one already)."""
    frames = _frames(blob)
    return blob if len(frames) == 1 else Sketch(_sum_counts(frames)).encode()


def frame_count(blob: bytes) -> int:
    """How many frames a stored sketch holds."""
    return len(_frames(blob))


def merged_quantile(blobs: Iterable[bytes], q: float) -> float | None:
    """``merge_all(blobs).quantile(q)``, several times faster for one sketch (an hour's row)."""
    frames = [frame for blob in blobs for frame in _frames(blob)]
    if len(frames) != 1:
        return Sketch(_sum_counts(frames)).quantile(q)
    return _quantile(*frames[0], q)  # keys ascending, as encode writes them


def merge_all(blobs: Iterable[bytes]) -> Sketch:
    """The merge of many encoded sketches (a query's rollup rows)."""
    parsed = [frame for blob in blobs for frame in _frames(blob)]
    if sum(len(keys) for keys, _ in parsed) < _DENSE_FROM:
        return Sketch(_sum_counts(parsed))
    # A slot per possible key beats a dict here; a negative key indexes from the end of the
    # list, so keys index it directly: 0 … MAX_KEY, then −MAX_KEY … −1.
    dense = [0] * len(_SLOT_KEYS)
    for keys, counts in parsed:
        for key, count in zip(keys, counts, strict=True):
            dense[key] += count
    return Sketch(dict(zip(compress(_SLOT_KEYS, dense), filter(None, dense), strict=True)))


def _quantile(keys: Sequence[int], counts: Iterable[int], q: float) -> float | None:
    """The representative at rank ⌈q·n⌉ of counts over ascending keys; None when empty."""
    running = list(accumulate(counts))
    rank = nearest_rank(q, running[-1] if running else 0)  # checks q even when empty
    return value_of(keys[bisect_left(running, rank)]) if running else None


def _sum_counts(parsed: list[tuple[array, array]]) -> dict[int, int]:
    """Key → count summed over the key and count arrays of some encoded sketches."""
    merged = dict(zip(*parsed[0], strict=True)) if parsed else {}
    get = merged.get
    for keys, counts in parsed[1:]:
        for key, count in zip(keys, counts, strict=True):
            merged[key] = get(key, 0) + count
    return merged


def _count_keys(values: Iterable[float]) -> dict[int, int]:
    """Key → count over ``values``, computing the logarithms in bulk."""
    values = values if isinstance(values, list) else list(values)
    if len(values) <= _FEW:
        return _count_few(values)
    zeros = values.count(0)
    if zeros == 0 and min(values, default=1) > 0:
        positives, negatives = values, []
    else:
        positives = [v for v in values if v > 0]
        negatives = [-v for v in values if v < 0]
        if len(positives) + len(negatives) + zeros != len(values):
            raise ValueError("a sketch takes finite numbers, not NaN")
    counts = {0: zeros} if zeros else {}
    _count_magnitudes(counts, positives, 1)
    _count_magnitudes(counts, negatives, -1)
    return counts


def _count_few(values: list[float]) -> dict[int, int]:
    """Key → count over a few ``values``, one at a time (the bulk path's setup costs more)."""
    counts: dict[int, int] = {}
    get, log, ceil = counts.get, math.log, math.ceil
    for value in values:
        if value > 0 and value != math.inf:
            key = ceil(log(value) * MULTIPLIER) + OFFSET
            key = 1 if key < 1 else MAX_KEY if key > MAX_KEY else key
        else:
            key = key_of(value)  # zero, negatives; refuses NaN and infinities
        counts[key] = get(key, 0) + 1
    return counts


def _count_magnitudes(counts: dict[int, int], magnitudes: list[float], sign: int) -> None:
    """Add positive ``magnitudes`` to ``counts`` under keys of the given sign."""
    try:
        indexes = Counter(map(math.ceil, map(mul, map(math.log, magnitudes), repeat(MULTIPLIER))))
    except (OverflowError, ValueError):  # ceil of inf or NaN
        raise ValueError("a sketch takes finite numbers, not inf or NaN") from None
    # Clamping after counting: few distinct indexes, and several may clamp to one key.
    for bucket, count in indexes.items():
        key = sign * min(MAX_KEY, max(1, bucket + OFFSET))
        counts[key] = counts.get(key, 0) + count


def _frames(blob: bytes) -> list[tuple[array, array]]:
    """The key and count arrays of each frame of a stored sketch. Only the frames and their end
    keys are checked: checking every key costs as much as merging, and the merges read blobs
    encode wrote."""
    if not isinstance(blob, bytes | bytearray):
        blob = bytes(blob)  # array() would read a memoryview's bytes as numbers
    frames, start, size = [], 0, len(blob)
    while True:
        end = start + _HEADER
        if size < end or blob[start] != _VERSION or blob[start + 1] not in _COUNT_TYPES:
            raise ValueError("not an encoded sketch (version 2 frames)")
        width = blob[start + 1]
        n = int.from_bytes(blob[start + 2 : end], "little")
        keys = array("h", blob[end : end + 2 * n])
        counts = array(_COUNT_TYPES[width], blob[end + 2 * n : end + (2 + width) * n])
        if len(counts) != n:
            raise ValueError("an encoded sketch of the wrong length")
        if _BIG_ENDIAN_HOST:
            keys.byteswap()
            counts.byteswap()
        if n and not -MAX_KEY <= keys[0] <= keys[-1] <= MAX_KEY:  # ascending, as encode writes
            raise ValueError("an encoded sketch with a key out of range")
        frames.append((keys, counts))
        start = end + (2 + width) * n
        if start == size:
            return frames
