"""Exact dedup on normalized text and MinHash near-dedup, as a shuffle by band key.

Documents are named by their global index (shard offset + row: corpus order). A document whose
normalized text was seen before is an exact duplicate of the first one. Every other document with
words is near-deduplicated by MinHash LSH: it is a candidate of another when the two signatures
share a whole band, and a near duplicate when they also agree on at least `verify_jaccard` of their
positions (the MinHash estimate of Jaccard similarity). Pairs become clusters (connected
components); a cluster's representative is its first document that passed every per-document
filter (else its first document), and every other member is `duplicate_of` it.

The steps each see a slice of the corpus, so the same code runs in one process or on a cluster
(`filters.dedup_shuffle` runs them as tasks over the cleaning stage's work folder):

 1. per shard: `exact_entries` (normalized-text key -> partition) and, once the exact duplicates
    are known, `band_entries` (one 64-bit hash per LSH band of every eligible document -> partition);
 2. per partition ("bucket"): `exact_edges` links every later copy of a key to its first document;
    `bucket_candidates` pairs the documents whose band hashes collide, and `verify_pairs` keeps a
    pair when the two signatures share a whole band and agree on at least `verify_jaccard`;
 3. over the edge list (small: one edge per duplicate): `components` -> each node's cluster root,
    the smallest index, and `representatives` -> the first member that passed the filters.

`deduplicate` composes the steps over arrays in memory. The clusters are datasketch's `MinHashLSH`
clusters for the same signatures (tests/dedup_oracle.py is that reference; tests check equality).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from filters.text import mix64

# scipy is imported where it is used: scipy.integrate alone is ~1 s of the start of every command
# and cleaning worker that imports this module


def _fp(threshold: float, b: int, r: int) -> float:
    from scipy.integrate import quad

    return quad(lambda s: 1 - (1 - s ** r) ** b, 0.0, threshold)[0]


def _fn(threshold: float, b: int, r: int) -> float:
    from scipy.integrate import quad

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


@dataclass
class DedupResult:
    cluster: np.ndarray  # per doc: index of the cluster's first document (its root), -1 when in no cluster
    representative: np.ndarray  # per doc: index of the kept representative of its cluster, -1 when none
    exact_dup: np.ndarray  # bool: an exact duplicate (normalized text seen before)
    bands: int
    rows: int
    pairs: int  # candidate pairs that passed verification


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def band_hashes(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(docs, bands) uint64: a hash of band k's `rows` values and of k itself (equal bands of
    different k never collide by construction; a collision of unequal bands is ruled out later by
    `verify_pairs`, which compares the bands themselves)."""
    n = signatures.shape[0]
    out = np.empty((n, bands), dtype=np.uint64)
    sig = signatures.astype(np.uint64, copy=False)
    with np.errstate(over="ignore"):
        for k in range(bands):
            h = np.full(n, np.uint64(k + 1) * _GOLDEN, dtype=np.uint64)
            for c in range(k * rows, (k + 1) * rows):
                h = mix64(h ^ sig[:, c])
            out[:, k] = h
    return out


def _split(part: np.ndarray, partitions: int, *cols: np.ndarray) -> list[tuple[np.ndarray, ...]]:
    order = np.argsort(part, kind="stable")
    part = part[order]
    cuts = np.searchsorted(part, np.arange(partitions + 1))
    return [tuple(c[order][cuts[p]:cuts[p + 1]] for c in cols) for p in range(partitions)]


def key_hash(keys: np.ndarray) -> np.ndarray:
    """A stable 63-bit hash per exact-dedup key (bytes), to pick its partition."""
    return np.array([int.from_bytes(hashlib.blake2b(bytes(k), digest_size=8).digest(), "little") >> 1 for k in keys],
                    dtype=np.int64)


def exact_entries(keys: list[str | None], offset: int, partitions: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """One shard's (key, global index) entries, split by partition on the key's hash; documents
    without a key (no words) are left out."""
    rows = [i for i, k in enumerate(keys) if k is not None]
    karr = np.array([keys[i].encode() for i in rows], dtype=bytes) if rows else np.empty(0, dtype="S1")
    idx = np.array(rows, dtype=np.int64) + offset
    return _split(key_hash(karr) % partitions, partitions, karr, idx)


def exact_edges(keys: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """(edges, 2) int64 [first, later]: every later document whose key equals an earlier one's is
    linked to the first document with that key ."""
    if len(idx) == 0:
        return np.empty((0, 2), dtype=np.int64)
    _, inv = np.unique(keys, return_inverse=True)
    order = np.lexsort((idx, inv))
    g, ix = inv[order], idx[order]
    first = np.r_[True, g[1:] != g[:-1]]
    head = ix[np.maximum.accumulate(np.where(first, np.arange(len(ix)), 0))]
    return np.stack([head[~first], ix[~first]], axis=1).astype(np.int64)


def band_entries(signatures: np.ndarray, eligible: np.ndarray, offset: int, bands: int, rows: int,
                 partitions: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """One shard's (band hash, global index) entries for its eligible documents (with words, not an
    exact duplicate), split by partition on the band hash."""
    rows_ix = np.flatnonzero(eligible)
    if len(rows_ix) == 0:
        e = (np.empty(0, np.uint64), np.empty(0, np.int64))
        return [e] * partitions
    bh = band_hashes(signatures[rows_ix], bands, rows).ravel()
    idx = np.repeat(rows_ix.astype(np.int64) + offset, bands)
    return _split((bh % np.uint64(partitions)).astype(np.int64), partitions, bh, idx)


def bucket_candidates(hashes: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """(pairs, 2) int64 [j, i], j < i, distinct: every two documents whose band hashes collide."""
    if len(idx) < 2:
        return np.empty((0, 2), dtype=np.int64)
    order = np.lexsort((idx, hashes))
    h, ix = hashes[order], idx[order]
    starts = np.flatnonzero(np.r_[True, h[1:] != h[:-1]])
    sizes = np.diff(np.r_[starts, len(h)])
    out = []
    for s, k in zip(starts[sizes > 1], sizes[sizes > 1]):
        a, b = np.triu_indices(k, 1)
        g = ix[s:s + k]
        out.append(np.stack([g[a], g[b]], axis=1))
    if not out:
        return np.empty((0, 2), dtype=np.int64)
    return unique_pairs(np.concatenate(out))


def unique_pairs(pairs: np.ndarray) -> np.ndarray:
    """Distinct rows of a (pairs, 2) array, sorted by (i, j) — the order a sequential LSH meets them."""
    if len(pairs) == 0:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.unique(pairs.astype(np.int64), axis=0)
    return pairs[np.lexsort((pairs[:, 0], pairs[:, 1]))]


def verify_pairs(pairs: np.ndarray, sig_j: np.ndarray, sig_i: np.ndarray, bands: int, rows: int,
                 verify_jaccard: float | None) -> np.ndarray:
    """The candidate pairs that are near duplicates: the two signatures (rows of `sig_j`, `sig_i`,
    aligned with `pairs`) share at least one whole band and, when `verify_jaccard` is set, agree on
    at least that fraction of all their positions."""
    if len(pairs) == 0:
        return pairs
    w = bands * rows
    same_band = (sig_j[:, :w] == sig_i[:, :w]).reshape(len(pairs), bands, rows).all(axis=2).any(axis=1)
    keep = same_band
    if verify_jaccard is not None:
        keep = keep & ((sig_j == sig_i).mean(axis=1) >= verify_jaccard)
    return pairs[keep]


def components(edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of an edge list: (nodes, roots), both sorted by node; a node's root is
    the smallest index in its component. Nodes in no edge are in no cluster and not returned."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if len(edges) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    nodes = np.unique(edges.ravel())
    a, b = np.searchsorted(nodes, edges[:, 0]), np.searchsorted(nodes, edges[:, 1])
    g = coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(len(nodes), len(nodes)))
    n_comp, labels = connected_components(g, directed=False)
    root = np.full(n_comp, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(root, labels, nodes)
    return nodes, root[labels]


def representatives(nodes: np.ndarray, roots: np.ndarray, passed: np.ndarray) -> np.ndarray:
    """Per node (aligned with `components`' output): its cluster's first member that passed the
    per-document filters, else the cluster's first member (its root)."""
    if len(nodes) == 0:
        return np.empty(0, np.int64)
    uroots, inv = np.unique(roots, return_inverse=True)
    big = np.iinfo(np.int64).max
    best = np.full(len(uroots), big, dtype=np.int64)
    np.minimum.at(best, inv, np.where(passed, nodes, big))
    best = np.where(best == big, uroots, best)
    return best[inv]


def deduplicate(keys: list[str | None], signatures: np.ndarray, has_words: np.ndarray, passed: np.ndarray,
                shard_rows: list[int] | None = None, exact: bool = True, near: bool = True, threshold: float = 0.55,
                verify_jaccard: float | None = 0.65, fp_weight: float = 0.5, partitions: int = 4,
                bands: tuple[int, int] | None = None) -> DedupResult:
    """The shuffle over arrays in memory, shard by shard (`shard_rows`, default one shard) and bucket
    by bucket: what the cleaning stage computes over its work folder (`filters.dedup_shuffle`), for
    tests and benchmarks. keys: normalized-text digests (None: no text); signatures: (docs, num_perm)
    uint32; has_words, passed (the per-document filters): bool per document."""
    n = len(keys)
    num_perm = signatures.shape[1] if signatures.ndim == 2 else 0
    b, r = bands or optimal_bands(threshold, num_perm, fp_weight)[:2]
    shard_rows = [n] if shard_rows is None else shard_rows
    offsets = np.r_[0, np.cumsum(shard_rows)].astype(np.int64)
    exact_dup = np.zeros(n, dtype=bool)
    edges = [np.empty((0, 2), np.int64)]
    if exact:
        per_shard = [exact_entries(keys[offsets[s]:offsets[s + 1]], int(offsets[s]), partitions) for s in range(len(shard_rows))]
        for p in range(partitions):
            e = exact_edges(np.concatenate([x[p][0] for x in per_shard]), np.concatenate([x[p][1] for x in per_shard]))
            exact_dup[e[:, 1]] = True
            edges.append(e)
    pairs = 0
    if near and n:
        eligible = has_words & ~exact_dup
        per_shard = [band_entries(signatures[offsets[s]:offsets[s + 1]], eligible[offsets[s]:offsets[s + 1]],
                                  int(offsets[s]), b, r, partitions) for s in range(len(shard_rows))]
        near_edges = []
        for p in range(partitions):
            h = np.concatenate([x[p][0] for x in per_shard])
            ix = np.concatenate([x[p][1] for x in per_shard])
            cand = bucket_candidates(h, ix)
            near_edges.append(verify_pairs(cand, signatures[cand[:, 0]], signatures[cand[:, 1]], b, r, verify_jaccard))
        near_e = unique_pairs(np.concatenate(near_edges))
        pairs = len(near_e)
        edges.append(near_e)
    nodes, roots = components(np.concatenate(edges))
    rep = representatives(nodes, roots, passed[nodes])
    cluster = np.full(n, -1, dtype=np.int64)
    representative = np.full(n, -1, dtype=np.int64)
    cluster[nodes], representative[nodes] = roots, rep
    return DedupResult(cluster, representative, exact_dup, b, r, pairs)
