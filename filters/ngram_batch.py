"""Word n-grams of many documents at once, for the annotators' `annotate_batch` (one call per shard).

Per document, the n-gram checks (repetition, diversity) cost dozens of tiny numpy calls (a sort of
~200 values, comparisons, run lengths), each 1-5 us of call overhead; over a whole shard the same
work is a few numpy calls on arrays of a million values. `NgramBatch` holds up to `MAX_DOCS`
documents one after the other: their token hashes and word characters concatenated, with each
document's offset. The n-gram hashes over the concatenation use the polynomial of
`filters.text.Doc.ngrams` (h_n[i] = h_(n-1)[i] * BASE + t[i+n-1] mod 2^64, the same values), and
only the n-grams that lie inside one document are kept.

Equal n-grams of a document are grouped by ONE `np.sort` of a uint64 key per n-gram:
(document index << 52) | (hash >> 12). Within a document two different n-grams then compare equal
when the top 52 bits of their 64-bit hashes agree (probability about m^2 / 2^53 for a document of
m n-grams: ~4e-12 for a 200-word story); that is the one way a batch value can differ from the
per-document value, which compares the full 64 bits (besides a full 64-bit collision, which
`repetition_fracs`' pruning could also miss). Documents never mix: the index is in the top 12 bits,
so a batch holds at most 4,095 documents (index 4,095 marks the positions where no n-gram of a
document starts). `np.argsort`/`np.lexsort` are 10-25x slower than the SIMD `np.sort` of uint64
here, hence one sort of packed keys, and membership tests by bitmap + binary search.

`shared()` (the cleaning stage wraps its `annotate_batch` calls in it) lets diversity reuse the
distinct-n counts repetition made of the same documents.
"""
from __future__ import annotations

import operator
from contextlib import contextmanager
from itertools import chain

import numpy as np

from filters.text import NGRAM_BASE

MAX_DOCS = (1 << 12) - 1  # document index 4095 is the sentinel: positions where no n-gram starts
_DOC_SHIFT = np.uint64(52)
_HASH_SHIFT = np.uint64(64 - 52)
_SENTINEL = np.uint64(MAX_DOCS) << _DOC_SHIFT
MAX_TOKENS = 1 << 19  # tokens per batch (a document longer than this is a batch of its own): ~55 MB at the peak


def chunks(docs: list, size: int = MAX_DOCS, tokens: int = MAX_TOKENS) -> list[tuple[int, list]]:
    """(first index, documents) in consecutive chunks of at most `size` documents and, unless one
    document has more, `tokens` word tokens: a batch's arrays (about 100 bytes per token at their
    peak) stay bounded however long the shard's documents are."""
    out: list[tuple[int, list]] = []
    first = held = 0
    for i, d in enumerate(docs):
        k = len(d.hashes)
        if i > first and (i - first == size or held + k > tokens):
            out.append((first, docs[first:i]))
            first, held = i, 0
        held += k
    if first < len(docs):
        out.append((first, docs[first:]))
    return out


def _segment_max(values: np.ndarray, seg: np.ndarray, size: int) -> np.ndarray:
    """Per segment id in 0..size-1 the largest of `values` (0 where none); `seg` is non-decreasing."""
    out = np.zeros(size, dtype=np.int64)
    if len(seg):
        first = np.flatnonzero(np.concatenate(([True], seg[1:] != seg[:-1])))
        out[seg[first]] = np.maximum.reduceat(values, first)
    return out


class Runs:
    """The sorted keys of one n (a slice of documents' n-grams) and their runs of equal keys."""

    def __init__(self, keys: np.ndarray):
        s = np.sort(keys)
        s = s[:np.searchsorted(s, _SENTINEL)]  # the sentinel's keys sort last: dropped
        self.sorted = s
        new = np.empty(len(s), dtype=bool)
        if len(s):
            new[0] = True
            np.not_equal(s[1:], s[:-1], out=new[1:])
        self.start = start = np.flatnonzero(new)
        self.length = np.empty_like(start)
        if len(start):
            np.subtract(start[1:], start[:-1], out=self.length[:-1])
            self.length[-1] = len(s) - start[-1]
        self.doc = (s[start] >> _DOC_SHIFT).view(np.int64)

    def keys_where(self, which: np.ndarray) -> np.ndarray:
        """The keys (sorted, distinct) of the runs selected by the bool mask `which`."""
        return self.sorted[self.start[which]]


class NgramBatch:
    """Up to MAX_DOCS documents (`filters.text.Doc`), their token hashes and word characters
    concatenated. Position i of the concatenation is token i; `doc[i]` its document."""

    def __init__(self, docs: list):
        if len(docs) > MAX_DOCS:
            raise ValueError(f"NgramBatch: {len(docs)} documents, at most {MAX_DOCS}")
        self.docs = docs
        self.size = len(docs)
        self.lens = np.fromiter((len(d.hashes) for d in docs), dtype=np.int64, count=len(docs))
        ends = np.cumsum(self.lens)
        self.offsets = ends - self.lens
        self.n_tokens = int(ends[-1]) if len(ends) else 0
        self.hashes = np.concatenate([d.hashes for d in docs]) if docs else np.empty(0, dtype=np.uint64)
        self.doc = np.repeat(np.arange(self.size, dtype=np.intp), self.lens)
        self._doc_key = self.doc.astype(np.uint64) << _DOC_SHIFT
        self._remaining: np.ndarray | None = None
        self._word_chars: np.ndarray | None = None
        self._h: tuple[int, np.ndarray | None] = (1, None)
        self.distinct: dict[int, np.ndarray] = {}  # n -> distinct n-grams per document, once counted

    @classmethod
    def of(cls, docs: list) -> "NgramBatch":
        """A batch of these documents. Inside `shared()`, its `distinct` counts are those of the
        batches made before of the same documents (repetition counts the distinct 1- to 3-grams
        diversity reports, on the same chunks of a shard)."""
        b = cls(docs)
        got = _shared_counts(docs)
        if got is not None:
            b.distinct = got
        return b

    @property
    def remaining(self) -> np.ndarray:
        """Tokens from each position to the end of its document: an n-gram starts at i iff this is >= n."""
        if self._remaining is None:
            self._remaining = (self.offsets + self.lens)[self.doc] - np.arange(self.n_tokens, dtype=np.int64)
        return self._remaining

    def _chars(self) -> None:
        self._word_chars = np.fromiter(map(len, chain.from_iterable(d.tokens for d in self.docs)), dtype=np.int64, count=self.n_tokens)
        self._cum_chars = np.concatenate(([0], np.cumsum(self._word_chars)))
        ends = self.offsets + self.lens
        self._total_chars = self._cum_chars[ends] - self._cum_chars[self.offsets]

    @property
    def word_chars(self) -> np.ndarray:
        """Characters of every word token."""
        if self._word_chars is None:
            self._chars()
        return self._word_chars

    @property
    def cum_chars(self) -> np.ndarray:
        """0, then the running sum of `word_chars`."""
        if self._word_chars is None:
            self._chars()
        return self._cum_chars

    @property
    def total_chars(self) -> np.ndarray:
        """Word characters per document."""
        if self._word_chars is None:
            self._chars()
        return self._total_chars

    def ngram_count(self, n: int) -> np.ndarray:
        """n-grams per document."""
        return np.maximum(self.lens - n + 1, 0)

    def ngram_hashes(self, n: int) -> np.ndarray:
        """The n-gram hash at every position with n tokens left in the concatenation (also across
        a document's end: `keys` sets those apart). Built from the last n
        asked for when it is below n (the checks ask for increasing n), in place: the array given
        for a smaller n is overwritten (callers index it, which copies)."""
        if n == 1:
            return self.hashes
        if self.n_tokens - n + 1 <= 0:
            return np.empty(0, dtype=np.uint64)
        k, h = self._h
        if k > n or k == 1:
            k, h = 1, None
        for j in range(k + 1, n + 1):  # h_j[i] = h_(j-1)[i] * BASE + t[i+j-1]
            size = self.n_tokens - j + 1
            if h is None:
                h = self.hashes[:size] * NGRAM_BASE
            else:
                h = h[:size]
                h *= NGRAM_BASE
            h += self.hashes[j - 1:j - 1 + size]
        self._h = (n, h)
        return h

    def keys(self, n: int) -> np.ndarray:
        """The key (document << 52) | (n-gram hash >> 12) at every position 0..n_tokens-n; a
        position where no n-gram of its document starts gets a key of its own in the sentinel
        document (`Runs` drops them)."""
        m = self.n_tokens - n + 1
        if m <= 0:
            return np.empty(0, dtype=np.uint64)
        k = self.ngram_hashes(n) >> _HASH_SHIFT
        k |= self._doc_key[:m]
        if n > 1:
            bad = np.flatnonzero(self.remaining[:m] < n)
            k[bad] = _SENTINEL | bad.astype(np.uint64)
        return k

    def keys_at(self, n: int, pos: np.ndarray) -> np.ndarray:
        """The keys of the n-grams at positions `pos` (each must start an n-gram of its document)."""
        k = self.ngram_hashes(n)[pos] >> _HASH_SHIFT
        k |= self._doc_key[pos]
        return k

    def chars(self, n: int, pos: np.ndarray) -> np.ndarray:
        """Characters of the words of the n-gram at each position."""
        return self.cum_chars[pos + n] - self.cum_chars[pos]


def contains_sorted(sorted_values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Bool per element of x: is it in sorted_values (uint64 keys whose low bits are hash bits).
    A bitmap on the low bits of the values first rules out most of x with one lookup each; the
    binary search (np.searchsorted) runs on the few that remain."""
    out = np.zeros(len(x), dtype=bool)
    if len(sorted_values) == 0 or len(x) == 0:
        return out
    size = 1 << min(max(int(32 * len(sorted_values)).bit_length(), 10), 24)
    mask = np.uint64(size - 1)
    bitmap = np.zeros(size, dtype=bool)
    bitmap[sorted_values & mask] = True
    cand = np.flatnonzero(bitmap[x & mask])
    if len(cand):
        y = x[cand]
        pos = np.searchsorted(sorted_values, y)
        pos[pos == len(sorted_values)] = 0
        out[cand] = sorted_values[pos] == y
    return out


def repetition_fracs(b: NgramBatch, top_ns, dup_ns) -> dict[int, np.ndarray]:
    """n -> per document `filters.repetition.top_ngram_char_frac` (n in `top_ns`) or
    `dup_ngram_char_frac` (n in `dup_ns`, with `annotate`'s short cut: once a document's value is
    0.0, it is 0.0 for the larger n), for n = 1, 2, ... up to the largest asked, one after the
    other; the distinct-n counts (diversity's) come along.

    An n-gram can occur twice only where the (n-1)-grams at its position and the next both occur
    twice (equal n-grams have equal (n-1)-grams), so from n = 2 on only those positions are
    sorted: every other n-gram occurs once, which neither the top n-gram (counted when it occurs
    twice or more) nor the duplicated characters see, and distinct-n counts as one each."""
    total = b.total_chars
    size = b.size
    ns = sorted(set(top_ns) | set(dup_ns))
    out: dict[int, np.ndarray] = {}
    rep_prev: np.ndarray | None = None  # per position: does the (n-1)-gram there occur more than once
    active = np.ones(size, dtype=bool)  # the duplicate n-grams' short cut
    for n in range(1, ns[-1] + 1):  # from the words: their repeats prune the 2-grams
        vals = np.zeros(size, dtype=np.float64)
        count = b.ngram_count(n)
        m = b.n_tokens - n + 1
        if m <= 0:  # no document has n words
            b.distinct[n] = count
            if n in dup_ns:
                active = vals != 0.0
            out[n] = vals
            rep_prev = np.zeros(0, dtype=bool)
            continue
        if rep_prev is None:
            keys, pos = b.keys(n), None
        else:
            cand = rep_prev[:m] & rep_prev[1:m + 1]
            if n == 2:  # a word at a document's end and the next document's first word are no 2-gram
                cand &= b.remaining[:m] >= 2
            # (from n = 3 on, an n-gram crossing a document's end has an (n-1)-gram that crosses
            # it at the next position, which never counts as repeated)
            pos = np.flatnonzero(cand)
            keys = b.keys_at(n, pos)
        runs = Runs(keys)
        here = (lambda mask: np.flatnonzero(mask)) if pos is None else (lambda mask: pos[mask])
        if pos is None:
            b.distinct[n] = np.bincount(runs.doc, minlength=size)
        else:
            b.distinct[n] = count - np.bincount(b.doc[pos], minlength=size) + np.bincount(runs.doc, minlength=size)
        rep_pos = here(contains_sorted(runs.keys_where(runs.length >= 2), keys))  # positions of repeated n-grams
        ok = (count >= 2) & (total > 0)
        if n in top_ns:
            top = _segment_max(runs.length, runs.doc, size)  # the largest run per document
            ok_top = ok & (top >= 2)
            if ok_top.any():
                tied = runs.length == np.where(ok_top, top, -1)[runs.doc]
                at = here(contains_sorted(runs.keys_where(tied), keys))
                # identical n-grams have identical characters: the largest over the tied n-grams' positions
                chars = _segment_max(b.chars(n, at), b.doc[at], size)
                vals[ok_top] = (chars[ok_top] * top[ok_top]).astype(np.float64) / total[ok_top].astype(np.float64)
        if n in dup_ns:
            act = active & ok
            starts = rep_pos[act[b.doc[rep_pos]]]
            if len(starts):
                # words covered by a repeated n-gram starting at p: p..p+n-1 (a running sum of +1/-1
                # marks; an n-gram never crosses a document's end, so nothing leaks into the next)
                marks = np.zeros(b.n_tokens + 1, dtype=np.int32)
                marks[starts] += 1
                marks[starts + n] -= 1
                covered = np.cumsum(marks[:-1]) > 0
                cc = np.concatenate(([0], np.cumsum(np.where(covered, b.word_chars, 0))))
                cov = cc[b.offsets + b.lens] - cc[b.offsets]
                vals[act] = cov[act].astype(np.float64) / total[act].astype(np.float64)
            active = vals != 0.0
        out[n] = vals
        rep_prev = np.zeros(m, dtype=bool)
        rep_prev[rep_pos] = True
    return out


def distinct_counts(docs: list, ns) -> dict[int, np.ndarray]:
    """n -> distinct n-grams per document, for a chunk of documents (as `chunks` cuts them): those
    counted before inside `shared()`, else one sort per n."""
    got = _shared_counts(docs)
    if got is not None and all(n in got for n in ns):
        return {n: got[n] for n in ns}
    b = NgramBatch.of(docs)
    for n in ns:
        if n not in b.distinct:
            b.distinct[n] = np.bincount(Runs(b.keys(n)).doc, minlength=b.size)
    return {n: b.distinct[n] for n in ns}


_SHARED: dict | None = None


def _shared_counts(docs: list) -> dict[int, np.ndarray] | None:
    """Inside `shared()`: the distinct-n counts (n -> per document) of these documents."""
    if _SHARED is None or not docs:
        return None
    key = (len(docs), id(docs[0]), id(docs[-1]))
    got = _SHARED.get(key)
    if got is None or not all(map(operator.is_, got[0], docs)):
        got = _SHARED[key] = (docs, {})
    return got[1]


@contextmanager
def shared():
    """Within the block, the batches `NgramBatch.of` makes of the same documents share their
    distinct-n counts (a few integers per document; the cleaning stage wraps its `annotate_batch`
    calls in it); they are dropped at the end."""
    global _SHARED
    outer = _SHARED
    _SHARED = {} if outer is None else outer
    try:
        yield
    finally:
        _SHARED = outer


def shingles_and_candidates(docs: list, shingle: int, ngram: int, in_index) -> tuple[list[np.ndarray], np.ndarray]:
    """For each document its MinHash shingles, equal to `filters.minhash.shingle_ngrams(doc, shingle)`
    (its `shingle`-gram hashes; a shorter document's one hash of all its words), and which documents
    have an `ngram`-gram for which `in_index(hashes) -> bool array` holds (decontamination's exact
    membership test over a whole chunk, `EvalIndex.contains`): only those need the per-document
    match that names the eval item. Full 64-bit hashes here (no keys), so the shingles and n-grams
    are exactly the per-document ones."""
    sets: list[np.ndarray] = []
    candidate = np.zeros(len(docs), dtype=bool)
    for first, chunk in chunks(docs):
        b = NgramBatch(chunk)
        small = b.lens < shingle
        h = b.ngram_hashes(shingle)
        starts = b.remaining[:len(h)] >= shingle
        flat = h[starts]  # a copy: ngram_hashes reuses its array for the next n
        counts = b.ngram_count(shingle)
        sets.extend(np.split(flat, np.cumsum(counts)[:-1]))
        for i in np.flatnonzero(small & (b.lens > 0)).tolist():  # fewer words than a shingle: all of them
            sets[first + i] = chunk[i].ngrams(int(b.lens[i]))
        if in_index is not None:
            h = b.ngram_hashes(ngram)
            pos = np.flatnonzero(b.remaining[:len(h)] >= ngram)  # positions where a whole n-gram starts
            pos = pos[in_index(h[pos])]
            candidate[first + np.unique(b.doc[pos])] = True
    return sets, candidate
