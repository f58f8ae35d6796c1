"""Vectorized MinHash signatures over word n-gram shingles, equal to datasketch's `MinHash`.

A shingle is `n` consecutive word tokens (a document shorter than `n` words is one shingle; a
document without words has none and the all-max signature). Its 32-bit hash is the top half of a
mixed 64-bit n-gram hash (see `filters.text`). The permutations are datasketch's own (its default
"affine32" scheme: fmix32 then a*h+b mod 2^32, a and b drawn from `seed`), so for the same
`num_perm` and `seed` a signature here is bit-for-bit the one `MinHash.update_batch` gives when
fed the shingle strings with `shingle_hash32` as its hash function; `bench/minhash.py` checks it.
The speed comes from hashing each token once and doing everything per shingle in numpy, many
documents per call.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from filters.text import ngram_hash_py

_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_MAX32 = np.uint32(0xFFFFFFFF)
# fmix32 constants (MurmurHash3 finalizer), as datasketch's affine32 scheme uses them
_F1, _F2 = np.uint32(0x85EBCA6B), np.uint32(0xC2B2AE35)


def mix64_to32(h: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer, then the top 32 bits: n-gram hashes -> well-spread 32-bit shingle hashes."""
    h = h ^ (h >> np.uint64(30))
    h = h * _M1
    h = h ^ (h >> np.uint64(27))
    h = h * _M2
    h = h ^ (h >> np.uint64(31))
    return (h >> np.uint64(32)).astype(np.uint32)


def shingle_hash32(shingle: bytes) -> int:
    """Plain-Python hash of one shingle (space-joined tokens): datasketch's `hashfunc` in tests and the bench."""
    h = np.array([ngram_hash_py(shingle.decode("utf-8").split(" "))], dtype=np.uint64)
    return int(mix64_to32(h)[0])


def shingles(tokens: list[str], n: int) -> list[bytes]:
    """The shingle strings (for the datasketch reference only; the fast path never builds them)."""
    if not tokens:
        return []
    if len(tokens) < n:
        return [" ".join(tokens).encode("utf-8")]
    return [" ".join(tokens[i:i + n]).encode("utf-8") for i in range(len(tokens) - n + 1)]


@lru_cache(maxsize=8)
def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from datasketch import MinHash

    a, b = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
    return a.astype(np.uint32), b.astype(np.uint32)


def _fmix32(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint32(16))
    h = h * _F1
    h = h ^ (h >> np.uint32(13))
    h = h * _F2
    return h ^ (h >> np.uint32(16))


def shingle_hashes(doc, n: int) -> np.ndarray:
    """32-bit shingle hashes of a `filters.text.Doc` (uses its cached n-gram hashes)."""
    k = len(doc.hashes)
    if k == 0:
        return np.empty(0, dtype=np.uint32)
    return mix64_to32(doc.ngrams(min(n, k)))


class MinHasher:
    """Signatures for many documents at once: `signatures(list of shingle-hash arrays)` -> (docs, num_perm) uint32."""

    def __init__(self, num_perm: int = 128, seed: int = 1, chunk: int = 4096):
        self.num_perm, self.seed, self.chunk = num_perm, seed, chunk
        a, b = permutations(num_perm, seed)
        self.a, self.b = a[None, :], b[None, :]

    def signatures(self, shingle_sets: list[np.ndarray]) -> np.ndarray:
        out = np.full((len(shingle_sets), self.num_perm), _MAX32, dtype=np.uint32)
        # group documents so that one block of (shingles x num_perm) stays cache-sized
        start = 0
        while start < len(shingle_sets):
            end, total = start, 0
            while end < len(shingle_sets) and (total == 0 or total + len(shingle_sets[end]) <= self.chunk):
                total += len(shingle_sets[end])
                end += 1
            block = [s for s in shingle_sets[start:end]]
            lens = np.array([len(s) for s in block])
            nonempty = np.nonzero(lens)[0]
            if len(nonempty):
                hv = _fmix32(np.concatenate([block[i] for i in nonempty]))[:, None]
                phv = hv * self.a
                phv += self.b
                offsets = np.concatenate([[0], np.cumsum(lens[nonempty])[:-1]])
                out[start + nonempty] = np.minimum.reduceat(phv, offsets, axis=0)
            start = end
        return out
