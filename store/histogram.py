"""A histogram of whole numbers ≥ 0 with buckets 1 % wide, stored as a compact blob that
merges fast (``store.figures`` keeps two per row of call figures).

A value under 100 is its own bucket; above, each bucket starts 1 % above the one before
(100, 101, …, 1000, 1010, 1020, …), so a value's bucket is less than 1 % below it, and the
buckets from 2 s to 30 s in ms are 272, from 0 to 600 s 280. A histogram is stored as
little-endian int32s: its first bucket's number and the counts from there to its last
(dense), or -1 and (bucket, count) pairs when that is shorter (a few values far apart).
Adding up a few hundred stored histograms is a few array additions, not a parse of each
bucket.
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left, bisect_right
from itertools import accumulate
from operator import add


def _bucket_starts() -> list[int]:
    starts = list(range(100))
    while starts[-1] < 2**40:  # ~35 years in ms
        starts.append(max(starts[-1] + 1, starts[-1] * 101 // 100))
    return starts


_STARTS = _bucket_starts()
_SPARSE = -1


def bucket(value: int) -> int:
    """The value a bucket stands for (where it starts): ``value`` less under 1 %."""
    return value_of(index_of(value))


def index_of(value: int) -> int:
    return bisect_right(_STARTS, max(0, value)) - 1


def value_of(index: int) -> int:
    return _STARTS[index]


def _int32s(data: bytes) -> array[int]:
    counts = array("i")
    counts.frombytes(data)
    if sys.byteorder == "big":
        counts.byteswap()
    return counts


class Histogram:
    """Counts by bucket number from ``first`` on, in a list that grows (either way) only as
    far as the buckets seen: a histogram of one value is one count."""

    def __init__(self) -> None:
        self.first = 0
        self.counts: list[int] = []

    def _cover(self, first: int, end: int) -> None:
        """Grow the list to hold buckets ``first`` … ``end - 1``."""
        if not self.counts:
            self.first, self.counts = first, [0] * (end - first)
            return
        if first < self.first:
            self.counts[:0] = [0] * (self.first - first)
            self.first = first
        if end > self.first + len(self.counts):
            self.counts.extend([0] * (end - self.first - len(self.counts)))

    def add(self, value: int, times: int = 1) -> None:
        self._add_index(index_of(value), times)

    def _add_index(self, index: int, times: int) -> None:
        self._cover(index, index + 1)
        self.counts[index - self.first] += times

    def add_stored(self, data: bytes) -> None:
        if not data:
            return
        first, counts = int.from_bytes(data[:4], "little", signed=True), _int32s(data[4:])
        if first == _SPARSE:
            indices, times = counts[0::2], counts[1::2]
            self._cover(min(indices), max(indices) + 1)
            mine, base = self.counts, self.first
            for index, n in zip(indices, times, strict=True):
                mine[index - base] += n
            return
        self._cover(first, first + len(counts))
        at = first - self.first
        self.counts[at : at + len(counts)] = map(add, self.counts[at : at + len(counts)], counts)

    def stored(self) -> bytes:
        """Dense or sparse, the shorter (b"" if empty)."""
        used = [i for i, n in enumerate(self.counts) if n]
        if not used:
            return b""
        if 2 * len(used) < used[-1] - used[0] + 1:
            pairs = [(self.first + i, self.counts[i]) for i in used]
            packed = array("i", [_SPARSE, *(n for pair in pairs for n in pair)])
        else:
            packed = array("i", [self.first + used[0], *self.counts[used[0] : used[-1] + 1]])
        if sys.byteorder == "big":
            packed.byteswap()
        return packed.tobytes()

    def values(self) -> dict[int, int]:
        """{bucket's value: count} of the non-empty buckets."""
        return {value_of(self.first + i): n for i, n in enumerate(self.counts) if n}

    def percentile(self, p: int) -> int | None:
        """Nearest rank: the smallest bucket with at least p % of the values at or below it
        (the first whose running count reaches ⌈size · p / 100⌉)."""
        running = list(accumulate(self.counts))
        if not running or running[-1] <= 0:
            return None
        rank = max(1, -(-running[-1] * p // 100))
        return value_of(self.first + bisect_left(running, rank))
