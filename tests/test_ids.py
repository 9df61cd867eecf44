"""Identifiers: shape, order in time, and randomness of the 16 random characters."""

from __future__ import annotations

import time
from collections import Counter

from tenantry import ids


def test_ids_have_the_documented_shape_and_sort_by_time() -> None:
    first = ids.new_id()
    time.sleep(0.002)
    later = [ids.new_id() for _ in range(1000)]
    assert all(ids.is_id(i) and len(i) == 25 for i in [first, *later])
    assert all(first[:9] <= i[:9] for i in later) and first < max(later)
    assert len(set(later)) == len(later)


def test_every_random_position_uses_the_whole_alphabet_evenly() -> None:
    """One draw from the OS for all 16 characters must still spread each of them evenly
    (rejection sampling, no modulo bias): a chi-square test per position, with a bound that
    a fair source exceeds about once in a million runs."""
    n = 36 * 200
    tails = [ids.new_id()[9:] for _ in range(n)]
    expected = n / 36
    for position in range(16):
        counts = Counter(t[position] for t in tails)
        assert set(counts) == set(ids._ALPHABET)
        chi2 = sum((counts[c] - expected) ** 2 / expected for c in ids._ALPHABET)
        assert chi2 < 90, (position, chi2)  # 35 degrees of freedom; p ≈ 1e-6
