"""The dedup hash set behaves as a set of 64-bit ints (Python's `set` is the oracle)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from k2.ingest.hashset import HashSet

# Few distinct low bits and the extremes: most hashes share a home slot, so probing runs
# long, wraps past the table's end and crosses the 0 (empty) marker.
HASHES = st.one_of(
    st.integers(0, 2**64 - 1),
    st.builds(lambda high, low: (high << 60) | low, st.integers(0, 15), st.integers(0, 3)),
    st.sampled_from([0, 1, 1023, 1024, 2**64 - 1, 2**63]),
)
BATCHES = st.lists(st.lists(HASHES, max_size=300), max_size=12)


def _u64(values: list[int]) -> np.ndarray:
    return np.array(values, dtype=np.uint64)


@settings(max_examples=300, deadline=None)
@given(batches=BATCHES, probes=st.lists(HASHES, max_size=200))
def test_matches_a_python_set(batches: list[list[int]], probes: list[int]) -> None:
    hashes, oracle = HashSet(), set()
    for batch in batches:
        hashes.add(_u64(batch))
        oracle.update(h or 1 for h in batch)  # 0 is stored as 1: a collision, never a loss
        assert len(hashes) == len(oracle)
        for h in batch:
            assert hashes.contains(_u64([h]))[0]
    queries = [h for batch in batches for h in batch] + probes
    found = hashes.contains(_u64(queries))
    assert found.tolist() == [(q or 1) in oracle for q in queries]


def test_grows_and_keeps_everything() -> None:
    rng = np.random.default_rng(7)
    held = rng.integers(0, 2**64 - 1, 200_000, dtype=np.uint64, endpoint=True)
    hashes = HashSet()
    for chunk in np.array_split(held, 20):
        hashes.add(chunk)
    assert hashes.contains(held).all()
    assert hashes.nbytes >= 2 * 8 * len(np.unique(held))  # at most half full
    others = rng.integers(0, 2**64 - 1, 200_000, dtype=np.uint64, endpoint=True)
    expected = np.isin(others, held)
    assert (hashes.contains(others) == expected).all()
    assert HashSet(held).contains(held).all()  # built in one go


def test_equal_hashes_in_one_batch_take_one_slot() -> None:
    hashes = HashSet(_u64([5] * 1000 + [5 + 1024] * 1000))
    assert hashes.contains(_u64([5, 5 + 1024, 5 + 2048])).tolist() == [True, True, False]
    assert len(hashes) == 2


def test_sized_for_what_it_expects_it_does_not_grow() -> None:
    hashes = HashSet(expected=1_000)
    size = hashes.nbytes
    assert size >= 2 * 8 * 1_000
    hashes.add(np.arange(1, 1_001, dtype=np.uint64))
    assert hashes.nbytes == size and len(hashes) == 1_000
