"""A set of 64-bit hashes, checked and extended a whole batch at a time (dedup's first step).

Hand-written because no library we use keeps a u64 set between calls with vectorised
membership: polars' and pyarrow's `is_in` build a hash table per call, so checking a poll
chunk against a store of N identities was one pass over all N (0.25 µs per record at 1M
identities, growing with the store); a Python `set` of ints costs ~76 bytes per hash (76 MB
per million) against 13-27 here (8-byte slots, 30-60 % full) and needs a Python int per
record. This is an open-addressing table (linear probing) in one numpy array: a batch of b
hashes costs O(b) whatever the size.

It only narrows: callers compare exact keys for every hash it reports present, so a collision
(two keys, one hash) costs a lookup and never drops a record. 0 marks an empty slot, so a
hash of 0 is stored as 1 (one more harmless collision).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
_EMPTY = np.uint64(0)
_MIN_SLOTS = 1 << 10
# Linear probing: at the highest load (just before the table doubles) a miss costs 58 ns at
# 0.5, 77 at 0.6, 111 at 0.7 (measured, 10k-hash batches, 4M slots); 0.6 holds 2.5M hashes in
# 32 MB where 0.5 doubled to 64 MB past 2.1M (a worker's peak RSS is a target).
_MAX_LOAD = 0.6


def _nonzero(hashes: U64) -> U64:
    return np.where(hashes == _EMPTY, np.uint64(1), hashes).astype(np.uint64, copy=False)


class HashSet:
    """Distinct 64-bit hashes."""

    __slots__ = ("_count", "_slots")  # _count: an upper bound on the hashes held

    def __init__(self, hashes: U64 | None = None, expected: int = 0) -> None:
        """`expected`: how many hashes it will likely hold, so that it need not grow (each
        growth re-places every hash) on its way there. The table is zeroed lazily by the
        kernel (calloc): slots cost memory once written, not before."""
        size = _MIN_SLOTS
        while max(expected, 0 if hashes is None else hashes.size) > _MAX_LOAD * size:
            size *= 2
        self._slots: U64 = np.zeros(size, dtype=np.uint64)
        self._count = 0
        if hashes is not None and hashes.size:
            self.add(hashes)

    def __len__(self) -> int:
        return int(np.count_nonzero(self._slots))  # exact; `_count` may run ahead of it

    @property
    def nbytes(self) -> int:
        """Bytes the table holds."""
        return int(self._slots.nbytes)

    def contains(self, hashes: U64) -> npt.NDArray[np.bool_]:
        """Per hash, whether it is in the set."""
        hashes = _nonzero(hashes)
        found = np.zeros(hashes.size, dtype=np.bool_)
        mask = np.uint64(self._slots.size - 1)
        todo = np.arange(hashes.size)
        wanted = hashes
        position = wanted & mask
        while todo.size:
            seen = self._slots[position]
            hit = seen == wanted
            found[todo[hit]] = True
            # Probe on while the slot holds another hash; an empty slot ends the search.
            going = ~hit & (seen != _EMPTY)
            todo, wanted = todo[going], wanted[going]
            position = (position[going] + np.uint64(1)) & mask
        return found

    def add(self, hashes: U64) -> None:
        """Add `hashes` (ones already present, or repeated, take no new slot)."""
        hashes = _nonzero(hashes)
        if not hashes.size:
            return
        if self._count + hashes.size > _MAX_LOAD * self._slots.size:
            self._count = len(self)  # the bound ran ahead: count before growing
            if self._count + hashes.size > _MAX_LOAD * self._slots.size:
                self._grow(self._count + hashes.size)
        self._count += self._place(hashes)

    def _grow(self, count: int) -> None:
        size = self._slots.size
        while count > _MAX_LOAD * size:
            size *= 2
        held = self._slots[self._slots != _EMPTY]
        self._slots = np.zeros(size, dtype=np.uint64)
        self._place(held)

    def _place(self, hashes: U64) -> int:
        """Insert non-zero hashes in rounds; returns how many slots were filled (an upper
        bound on the hashes added: equal hashes filling one slot in one round count twice,
        which only makes the table grow a little early).

        Each round, every hash looks at its next slot: holding that hash already, it is done;
        empty, it is written there (of several writers one value stays, whichever numpy
        writes last); then every hash not in its slot probes on. Every slot a hash passed is
        occupied, which is what a lookup relies on."""
        mask = np.uint64(self._slots.size - 1)
        position = hashes & mask
        filled = 0
        while hashes.size:
            empty = self._slots[position] == _EMPTY
            self._slots[position[empty]] = hashes[empty]
            done = self._slots[position] == hashes
            filled += int(np.count_nonzero(empty & done))
            going = ~done
            hashes = hashes[going]
            position = (position[going] + np.uint64(1)) & mask
        return filled
