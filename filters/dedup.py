"""Exact dedup on normalized text and MinHash LSH near-dedup (datasketch's `MinHashLSH`).

Documents are visited in corpus order (shard by shard, row by row). A document whose normalized text
was seen before is an exact duplicate of the first one. Every other document with words is queried
against the LSH index of the documents before it; a candidate counts when the two signatures agree
on at least `verify_jaccard` of their positions (the MinHash estimate of Jaccard similarity). Pairs
are merged with union-find into clusters; a cluster's representative is its first document that
passed every per-document filter (else its first document), and every other member is
`duplicate_of` it. `cluster_id` is the representative's id (null for a document in no cluster).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.integrate import quad


def _fp(threshold: float, b: int, r: int) -> float:
    return quad(lambda s: 1 - (1 - s ** r) ** b, 0.0, threshold)[0]


def _fn(threshold: float, b: int, r: int) -> float:
    return quad(lambda s: 1 - (1 - (1 - s ** r) ** b), threshold, 1.0)[0]


@lru_cache(maxsize=32)
def optimal_bands(threshold: float, num_perm: int, fp_weight: float = 0.5) -> tuple[int, int, float, float]:
    """(bands, rows, fp, fn): the split minimizing fp_weight*FP + (1-fp_weight)*FN, where FP is the
    area under the candidate probability 1-(1-s^r)^b below the threshold and FN the area above it
    that the curve misses."""
    best = (float("inf"), 0, 0, 0.0, 0.0)
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp, fn = _fp(threshold, b, r), _fn(threshold, b, r)
            err = fp * fp_weight + fn * (1 - fp_weight)
            if err < best[0]:
                best = (err, b, r, fp, fn)
    return best[1], best[2], best[3], best[4]


class _UnionFind:
    def __init__(self):
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        p = self.parent
        root = x
        while p.get(root, root) != root:
            root = p[root]
        while p.get(x, x) != root:
            p[x], x = root, p[x]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # the smaller index (earlier document) stays the root: deterministic clusters
            lo, hi = min(ra, rb), max(ra, rb)
            self.parent[hi] = lo


@dataclass
class DedupResult:
    cluster: np.ndarray  # per doc: index of the cluster's first document, -1 when in no cluster
    representative: np.ndarray  # per doc: index of the kept representative of its cluster, -1 when none
    exact_dup: np.ndarray  # bool: an exact duplicate (normalized text seen before)
    bands: int
    rows: int
    pairs: int  # candidate pairs that passed verification


def deduplicate(keys: list[str | None], signatures: np.ndarray, has_words: np.ndarray, passed: np.ndarray,
                exact: bool = True, near: bool = True, threshold: float = 0.55, verify_jaccard: float | None = 0.65,
                fp_weight: float = 0.5, seed: int = 1, bands: tuple[int, int] | None = None) -> DedupResult:
    """keys: normalized-text digests (None: no text); signatures: (docs, num_perm) uint32;
    has_words: bool per doc; passed: bool per doc (passed the per-document filters)."""
    from datasketch import LeanMinHash, MinHashLSH

    n, num_perm = signatures.shape if signatures.ndim == 2 else (len(keys), 0)
    uf = _UnionFind()
    exact_dup = np.zeros(n, dtype=bool)
    if exact:
        first: dict[str, int] = {}
        for i, k in enumerate(keys):
            if k is None:
                continue
            j = first.setdefault(k, i)
            if j != i:
                exact_dup[i] = True
                uf.union(j, i)
    b, r = bands or optimal_bands(threshold, num_perm, fp_weight)[:2]
    pairs = 0
    if near and n:
        lsh = MinHashLSH(num_perm=num_perm, params=(b, r))
        for i in range(n):
            if not has_words[i] or exact_dup[i]:
                continue
            m = LeanMinHash(seed=seed, hashvalues=signatures[i], scheme="affine32")
            cands = lsh.query(m)
            if cands:
                cands = np.array(sorted(cands))
                if verify_jaccard is not None:
                    agree = (signatures[cands] == signatures[i]).mean(axis=1)
                    cands = cands[agree >= verify_jaccard]
                for j in cands:
                    uf.union(int(j), i)
                pairs += len(cands)
            lsh.insert(i, m, check_duplication=False)
    cluster = np.full(n, -1, dtype=np.int64)
    members: dict[int, list[int]] = {}
    for i in range(n):
        members.setdefault(uf.find(i), []).append(i)
    rep = np.full(n, -1, dtype=np.int64)
    for root, idx in members.items():
        if len(idx) < 2:
            continue
        good = [i for i in idx if passed[i]]
        r0 = good[0] if good else idx[0]
        cluster[idx] = root
        rep[idx] = r0
    return DedupResult(cluster, rep, exact_dup, b, r, pairs)
