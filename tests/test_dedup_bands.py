"""The shuffle form of MinHash dedup (filters.dedup, the one implementation) finds exactly datasketch MinHashLSH's clusters."""
from __future__ import annotations

import numpy as np
import pytest
from dedup_oracle import datasketch_deduplicate

from filters.dedup import (
    band_entries,
    bucket_candidates,
    components,
    deduplicate,
    exact_edges,
    representatives,
    verify_pairs,
)
from filters.minhash import MinHasher


def planted(n_base: int, seed: int):
    """Documents as shingle-hash sets: originals, near copies (a few shingles changed), exact copies
    (same key and set), chains (a ~ b ~ c but a !~ c), documents without words."""
    rng = np.random.default_rng(seed)
    sets, keys = [], []
    for i in range(n_base):
        s = rng.integers(0, 2**32, size=int(rng.integers(20, 80)), dtype=np.uint64).astype(np.uint32)
        sets.append(s)
        keys.append(f"k{i}")
    for _ in range(n_base // 2):  # near copies of random earlier documents, placed anywhere later
        j = int(rng.integers(0, len(sets)))
        s = sets[j].copy()
        flip = rng.random(len(s)) < rng.choice([0.02, 0.08, 0.2, 0.5])
        s[flip] = rng.integers(0, 2**32, size=int(flip.sum()), dtype=np.uint64).astype(np.uint32)
        sets.append(s)
        keys.append(f"k{len(keys)}")
    for _ in range(n_base // 5):  # exact copies (same normalized text: same key, same shingles)
        j = int(rng.integers(0, len(sets)))
        if keys[j] is None:
            continue
        sets.append(sets[j].copy())
        keys.append(keys[j])
    for _ in range(n_base // 10):  # no words
        sets.append(np.empty(0, np.uint32))
        keys.append(None)
    order = rng.permutation(len(sets))
    sets = [sets[i] for i in order]
    keys = [keys[i] for i in order]
    sigs = MinHasher(128, 1).signatures(sets)
    has_words = np.array([k is not None for k in keys])
    passed = rng.random(len(keys)) < 0.7
    return keys, sigs, has_words, passed


@pytest.mark.parametrize("seed,partitions,verify", [(0, 1, 0.6), (1, 3, 0.6), (2, 7, None), (3, 4, 0.9)])
def test_banded_equals_datasketch(seed, partitions, verify):
    keys, sigs, has_words, passed = planted(600, seed)
    n = len(keys)
    rng = np.random.default_rng(seed + 100)
    cuts = np.sort(rng.choice(np.arange(1, n), size=5, replace=False))
    shard_rows = np.diff(np.r_[0, cuts, n]).tolist()
    ref = datasketch_deduplicate(keys, sigs, has_words, passed, threshold=0.7, verify_jaccard=verify)
    got = deduplicate(keys, sigs, has_words, passed, shard_rows, threshold=0.7, verify_jaccard=verify,
                             partitions=partitions)
    assert (got.bands, got.rows) == (ref.bands, ref.rows)
    assert ref.pairs > 50 and (ref.cluster >= 0).sum() > 100  # the planted duplicates were found
    assert ref.exact_dup.sum() > 50
    np.testing.assert_array_equal(got.exact_dup, ref.exact_dup)
    np.testing.assert_array_equal(got.cluster, ref.cluster)
    np.testing.assert_array_equal(got.representative, ref.representative)
    assert got.pairs == ref.pairs


def test_exact_only_and_near_only():
    keys, sigs, has_words, passed = planted(300, 7)
    rows = [len(keys) // 2, len(keys) - len(keys) // 2]
    for exact, near in [(True, False), (False, True), (False, False)]:
        ref = datasketch_deduplicate(keys, sigs, has_words, passed, exact=exact, near=near, threshold=0.55, verify_jaccard=0.65)
        got = deduplicate(keys, sigs, has_words, passed, rows, exact=exact, near=near, partitions=3,
                                 threshold=0.55, verify_jaccard=0.65)
        np.testing.assert_array_equal(got.cluster, ref.cluster)
        np.testing.assert_array_equal(got.representative, ref.representative)
        np.testing.assert_array_equal(got.exact_dup, ref.exact_dup)


def test_steps_on_a_hand_made_case():
    # documents 0, 2 share band 0 exactly; 3 is 0's exact copy; 1 is unrelated
    sig = np.arange(4 * 8, dtype=np.uint32).reshape(4, 8)
    sig[2, :4] = sig[0, :4]
    sig[2, 4:] = sig[0, 4:]
    sig[2, 7] = 999  # 7 of 8 positions agree
    e = band_entries(sig, np.array([True, True, True, False]), 10, bands=2, rows=4, partitions=1)[0]
    cand = bucket_candidates(*e)
    assert cand.tolist() == [[10, 12]]
    v = verify_pairs(cand, sig[[0]], sig[[2]], 2, 4, 0.8)
    assert v.tolist() == [[10, 12]]
    assert verify_pairs(cand, sig[[0]], sig[[2]], 2, 4, 0.9).tolist() == []
    # a hash collision cannot merge: pairs whose bands differ are dropped by the band check
    assert verify_pairs(np.array([[10, 11]]), sig[[0]], sig[[1]], 2, 4, None).tolist() == []
    ex = exact_edges(np.array([b"a", b"a", b"b", b"a", b"c"]), np.array([13, 10, 20, 40, 11]))
    assert sorted(ex.tolist()) == [[10, 13], [10, 40]]
    nodes, roots = components(np.array([[10, 12], [10, 13], [30, 31]]))
    assert nodes.tolist() == [10, 12, 13, 30, 31] and roots.tolist() == [10, 10, 10, 30, 30]
    rep = representatives(nodes, roots, np.array([False, True, True, False, False]))
    assert rep.tolist() == [12, 12, 12, 30, 30]
