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

from filters.text import (
    batch_token_hashes,
    mix64,
    mix64_py,
    ngram_hash_py,
    ngram_hashes,
)

_MAX32 = np.uint32(0xFFFFFFFF)
# fmix32 constants (MurmurHash3 finalizer), as datasketch's affine32 scheme uses them
_F1, _F2 = np.uint32(0x85EBCA6B), np.uint32(0xC2B2AE35)


def mix64_to32(h: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer, then the top 32 bits: n-gram hashes -> well-spread 32-bit shingle hashes."""
    return (mix64(h) >> np.uint64(32)).astype(np.uint32)


def mix64_to32_py(h: int) -> int:
    """`mix64_to32` on one Python int."""
    return mix64_py(h) >> 32


def shingle_hash32(shingle: bytes) -> int:
    """Plain-Python hash of one shingle (space-joined tokens): datasketch's `hashfunc` in tests and the bench."""
    return mix64_to32_py(ngram_hash_py(shingle.decode("utf-8").split(" ")))


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


def shingle_ngrams(doc, n: int) -> np.ndarray:
    """The 64-bit n-gram hashes of a `filters.text.Doc`'s shingles (its cached n-grams)."""
    k = len(doc.hashes)
    if k == 0:
        return np.empty(0, dtype=np.uint64)
    return doc.ngrams(min(n, k))


def shingle_hashes(doc, n: int) -> np.ndarray:
    """32-bit shingle hashes of a `filters.text.Doc`."""
    return mix64_to32(shingle_ngrams(doc, n))


class MinHasher:
    """Signatures for many documents at once: `signatures(list of shingle-hash arrays)` -> (docs, num_perm) uint32."""

    def __init__(self, num_perm: int = 128, seed: int = 1, chunk: int = 2048):
        self.num_perm, self.seed, self.chunk = num_perm, seed, chunk
        a, b = permutations(num_perm, seed)
        self.a, self.b = a[None, :], b[None, :]

    def signatures_flat(self, hashes: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Signatures from the shingle hashes of many documents laid end to end (`counts` per document).
        Permuted hashes are laid out (num_perm, shingles) so that the per-document minimum is a
        contiguous `minimum.reduceat` along rows (about twice as fast as the transposed layout)."""
        out = np.full((len(counts), self.num_perm), _MAX32, dtype=np.uint32)
        offsets = np.concatenate(([0], np.cumsum(counts)))
        hv_all = _fmix32(hashes.astype(np.uint32, copy=False))
        a, b = self.a.reshape(-1, 1), self.b.reshape(-1, 1)
        d = 0
        while d < len(counts):
            # documents d..e-1 whose shingles fit one cache-sized block (at least one document)
            e = max(int(np.searchsorted(offsets, offsets[d] + self.chunk, side="right")) - 1, d + 1)
            lo, hi = offsets[d], offsets[e]
            nz = np.flatnonzero(counts[d:e])
            if len(nz):
                block = a * hv_all[None, lo:hi]
                block += b
                out[d + nz] = np.minimum.reduceat(block, (offsets[d:e] - lo)[nz], axis=1).T
            d = e
        return out

    def signatures(self, shingle_sets: list[np.ndarray]) -> np.ndarray:
        counts = np.fromiter(map(len, shingle_sets), dtype=np.int64, count=len(shingle_sets))
        hashes = np.concatenate(shingle_sets) if len(shingle_sets) else np.empty(0, np.uint32)
        return self.signatures_flat(hashes.astype(np.uint32, copy=False), counts)

    def signatures_of_ngrams(self, ngram_sets: list[np.ndarray]) -> np.ndarray:
        """`signatures` of the shingle hashes of many documents given as their 64-bit n-gram hashes
        (`shingle_ngrams`): mixed to 32 bits in one numpy pass for all of them."""
        counts = np.fromiter(map(len, ngram_sets), dtype=np.int64, count=len(ngram_sets))
        flat = np.concatenate(ngram_sets) if len(ngram_sets) else np.empty(0, np.uint64)
        return self.signatures_flat(mix64_to32(flat.astype(np.uint64, copy=False)), counts)


def batch_shingle_hashes(texts: list[str], n: int) -> tuple[np.ndarray, np.ndarray]:
    """32-bit shingle hashes of many texts at once: (hashes of all documents, one after the other;
    shingles per document). Tokens are hashed in one pass over the batch and n-grams are built on the
    concatenated token hashes, keeping only those that do not cross a document boundary."""
    th, lens = batch_token_hashes(texts)
    ends = np.cumsum(lens)
    starts = ends - lens
    counts = np.where(lens >= n, lens - n + 1, np.minimum(lens, 1))
    grams = ngram_hashes(th, n)
    if len(grams):
        # an n-gram starting in the last n-1 tokens of a document crosses into the next one
        keep = np.ones(len(th), dtype=bool)
        tail = (ends[:, None] - np.arange(1, n)[None, :]).ravel()
        keep[tail[tail >= np.repeat(starts, n - 1)]] = False
        full = grams[keep[: len(grams)]]
    else:
        full = np.empty(0, dtype=np.uint64)
    short = np.flatnonzero((lens > 0) & (lens < n))
    if len(short):  # a document shorter than n words is one shingle: all its words
        full_counts = np.where(lens >= n, lens - n + 1, 0)
        full_offsets = np.concatenate(([0], np.cumsum(full_counts)))
        out_parts = []
        for d in range(len(texts)):
            if lens[d] >= n:
                out_parts.append(full[full_offsets[d]:full_offsets[d + 1]])
            elif lens[d] > 0:
                out_parts.append(ngram_hashes(th[starts[d]:ends[d]], int(lens[d])))
        full = np.concatenate(out_parts) if out_parts else full
    return mix64_to32(full), counts


def signatures_for_texts(texts: list[str], n: int = 5, num_perm: int = 128, seed: int = 1) -> np.ndarray:
    """(len(texts), num_perm) uint32 MinHash signatures of word n-gram shingles, straight from text."""
    hashes, counts = batch_shingle_hashes(texts, n)
    return MinHasher(num_perm, seed).signatures_flat(hashes, counts)
