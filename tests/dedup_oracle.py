"""The test oracle for near-dedup: datasketch's `MinHashLSH`, one document after another in corpus
order, union-find over the pairs. `filters.dedup.deduplicate` (the banded shuffle, the one
implementation tinyschool runs) must find exactly these clusters; bench/dedup_scale.py times it as
the reference."""
from __future__ import annotations

import numpy as np
from datasketch import LeanMinHash, MinHashLSH

from filters.dedup import DedupResult, optimal_bands


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


def datasketch_deduplicate(keys: list[str | None], signatures: np.ndarray, has_words: np.ndarray, passed: np.ndarray,
                           exact: bool = True, near: bool = True, threshold: float = 0.55, verify_jaccard: float | None = 0.65,
                           fp_weight: float = 0.5, seed: int = 1, bands: tuple[int, int] | None = None) -> DedupResult:
    """keys: normalized-text digests (None: no text); signatures: (docs, num_perm) uint32;
    has_words: bool per doc; passed: bool per doc (passed the per-document filters)."""
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
