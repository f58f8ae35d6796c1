"""A document prepared once for every annotator: text, lower-case word tokens and their hashes.

Word tokens are runs of letters or digits (an apostrophe may join two runs: "don't"), taken from
the lower-cased text by one regex; outside ASCII a run also holds the combining marks after its first
letter (Indic vowel signs and viramas), so "हिंदी" is one word. A token's hash is a polynomial over its UTF-8 bytes mod 2^64,
mixed by the splitmix64 finalizer; each distinct token is hashed once per process (a dict cache:
a corpus has few distinct word forms). Word n-gram hashes are then built with numpy from the
token hashes, so that shingling, repetition, diversity, echo and decontamination checks never
build Python n-gram tuples. `batch_token_hashes` gives the same hashes for many texts at once
without the regex: ASCII text is tokenized as a byte array and every token hashed from prefix sums.
"""
from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np


def _mark_class() -> str:
    """A regex class of every combining mark (Unicode Mn, Mc, Me) in planes 0-1 and the variation
    selectors, plus the zero-width (non-)joiners: the vowel signs and viramas of Indic scripts are
    marks, which `\\w` does not match, so a naive `\\w+` cuts "हिंदी" into "ह" and "द"."""
    ranges, start, prev = [], None, -2
    for cp in range(0x300, 0x20000):
        if unicodedata.category(chr(cp))[0] == "M":
            if cp != prev + 1:
                if start is not None:
                    ranges.append((start, prev))
                start = cp
            prev = cp
    ranges += [(start, prev), (0xE0100, 0xE01EF), (0x200C, 0x200D)]
    return "[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges) + "]"


class _WordPattern:
    """Word tokens: runs of letters or digits (an apostrophe may join two runs: "don't"); outside
    ASCII a run may also hold combining marks after its first letter ("हिंदी", "বাংলা" are one
    word each). ASCII text takes the plain pattern, so its tokens (and every hash built on them)
    are what they always were."""

    def __init__(self) -> None:
        self.ascii = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
        run = rf"[^\W_](?:[^\W_]|{_mark_class()})*"
        self.unicode = re.compile(rf"{run}(?:['’]{run})*")
        self.pattern = self.unicode.pattern

    def findall(self, text: str) -> list[str]:
        if not text.isascii():
            return self.unicode.findall(text)
        # ASCII: the runs of letters, digits and apostrophes, split in C (str.translate + split);
        # only a run holding an apostrophe needs the regex (a match never leaves its run)
        runs = text.translate(_ASCII_RUNS).split()
        if "'" not in text:
            return runs
        rx = self.ascii
        return [t for run in runs for t in (rx.findall(run) if "'" in run else (run,))]

    def finditer(self, text: str):
        return (self.ascii if text.isascii() else self.unicode).finditer(text)


# every ASCII character but letters, digits and the apostrophe -> a space
_ASCII_RUNS = str.maketrans({chr(i): " " for i in range(128) if not chr(i).isalnum() and chr(i) != "'"})
WORD_RE = _WordPattern()
# polynomial base for n-gram hashes (odd, so that multiplication mod 2^64 is a bijection)
NGRAM_BASE = np.uint64(0x9E3779B97F4A7C15)
_MASK64 = (1 << 64) - 1
_TOKEN_CACHE: dict[str, int] = {}
_TOKEN_CACHE_MAX = 2_000_000


# token hash: a polynomial over the token's UTF-8 bytes mod 2^64 (odd base, so it can be computed for
# every token of a batch at once from prefix sums), then the splitmix64 finalizer to spread it
TOKEN_BASE = 0xD6E8FEB86659FD93
_TOKEN_BASE_INV = pow(TOKEN_BASE, -1, 1 << 64)
_S1, _S2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def mix64_py(h: int) -> int:
    """splitmix64 finalizer on one Python int (64 bits)."""
    h ^= h >> 30
    h = (h * _S1) & _MASK64
    h ^= h >> 27
    h = (h * _S2) & _MASK64
    return h ^ (h >> 31)


def mix64(h: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer on uint64 values (a new array)."""
    h = h ^ (h >> np.uint64(30))
    h *= np.uint64(_S1)
    h ^= h >> np.uint64(27)
    h *= np.uint64(_S2)
    h ^= h >> np.uint64(31)
    return h


def token_hash(token: str) -> int:
    """64-bit hash of one token, in plain Python (the reference; the same in every process and run)."""
    h = 0
    for c in token.encode("utf-8"):
        h = (h * TOKEN_BASE + c) & _MASK64
    return mix64_py(h)


class _Powers:
    """TOKEN_BASE^k and TOKEN_BASE^-k mod 2^64 for k < size, grown on demand (kept up to `keep`)."""

    keep = 1 << 22

    def __init__(self) -> None:
        self.p = self.q = np.empty(0, dtype=np.uint64)

    @staticmethod
    def _make(base: int, size: int) -> np.ndarray:
        x = np.full(size, base, dtype=np.uint64)
        x[0] = 1
        return np.cumprod(x, out=x)  # uint64 products wrap mod 2^64

    def get(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        if len(self.p) >= size:
            return self.p, self.q
        grown = max(size, min(2 * len(self.p), self.keep), 1 << 16)
        p, q = self._make(TOKEN_BASE, grown), self._make(_TOKEN_BASE_INV, grown)
        if grown <= self.keep:
            self.p, self.q = p, q
        return p, q


_POWERS = _Powers()
_CHUNK_BYTES = 1 << 22  # text hashed per numpy pass: bounds the temporary arrays


def _span_hashes(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """`token_hash` of the byte spans buf[starts[i]:ends[i]] (uint8 buffer), all at once: with
    Q = BASE^-1, sum_{i<L} c_i BASE^(L-1-i) = BASE^(end-1) * (C[end] - C[start]) where C is the
    prefix sum of c_i Q^i (uint64 arithmetic wraps mod 2^64, the modulus wanted)."""
    if len(starts) == 0:
        return np.empty(0, dtype=np.uint64)
    p, q = _POWERS.get(len(buf) + 1)
    c = np.zeros(len(buf) + 1, dtype=np.uint64)
    np.multiply(buf, q[:len(buf)], out=c[1:])
    np.cumsum(c, out=c)
    return mix64((c[ends] - c[starts]) * p[ends - 1])


def _hash_new_tokens(tokens: list[str]) -> np.ndarray:
    """`token_hash` of many tokens at once (tokens never contain NUL: they are runs of letters/digits)."""
    out = np.empty(len(tokens), dtype=np.uint64)
    i = 0
    while i < len(tokens):
        j, size = i, 0
        while j < len(tokens) and (size < _CHUNK_BYTES or j == i):
            size += len(tokens[j]) + 1
            j += 1
        raw = "\0".join(tokens[i:j]).encode("utf-8")
        buf = np.frombuffer(raw, dtype=np.uint8)
        sep = np.flatnonzero(buf == 0)
        ends = np.concatenate((sep, [len(buf)]))
        starts = np.concatenate(([0], sep + 1))
        out[i:j] = _span_hashes(buf, starts, ends)
        i = j
    return out


def token_hashes(tokens: list[str]) -> np.ndarray:
    """`token_hash` of each token: from a per-process cache (a corpus has few distinct word forms);
    the tokens not seen before are hashed together in numpy."""
    cache = _TOKEN_CACHE
    try:  # the common case: every token seen before (a C-level loop)
        return np.fromiter(map(cache.__getitem__, tokens), dtype=np.uint64, count=len(tokens))
    except KeyError:
        pass
    if len(cache) > _TOKEN_CACHE_MAX:  # a flood of distinct junk tokens must not grow memory forever
        cache.clear()
    new = list(dict.fromkeys(t for t in tokens if t not in cache))
    cache.update(zip(new, _hash_new_tokens(new).tolist()))
    return np.fromiter(map(cache.__getitem__, tokens), dtype=np.uint64, count=len(tokens))


_ASCII_LOWER = np.arange(256, dtype=np.uint8)
_ASCII_LOWER[ord("A"):ord("Z") + 1] += 32
_ASCII_WORD = np.zeros(256, dtype=bool)  # what [^\W_] matches among ASCII characters
for _r in ("az", "AZ", "09"):
    _ASCII_WORD[ord(_r[0]):ord(_r[1]) + 1] = True


def _ascii_token_spans(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end of every WORD_RE match in lower-cased ASCII bytes: runs of letters/digits,
    an apostrophe joining two runs when it has a letter or digit on both sides."""
    word = _ASCII_WORD[buf]
    if len(buf) > 2:
        word[1:-1] |= (buf[1:-1] == ord("'")) & word[:-2] & word[2:]
    edge = np.diff(word.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    return np.flatnonzero(edge == 1), np.flatnonzero(edge == -1)


def batch_token_hashes(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Token hashes of many texts at once: (the hashes of every document's word tokens, one document
    after the other; tokens per document), equal to `token_hashes(WORD_RE.findall(text.lower()))`
    per text. ASCII texts are tokenized and hashed in numpy, a few MB per pass; any other text goes
    through the regex and the token cache."""
    parts: list[np.ndarray] = []
    lens = np.zeros(len(texts), dtype=np.int64)
    i = 0
    while i < len(texts):
        if not texts[i].isascii():
            h = token_hashes(WORD_RE.findall(texts[i].lower()))
            parts.append(h)
            lens[i] = len(h)
            i += 1
            continue
        j, size = i, 0  # a run of ASCII texts of about _CHUNK_BYTES
        while j < len(texts) and texts[j].isascii() and (size < _CHUNK_BYTES or j == i):
            size += len(texts[j]) + 1
            j += 1
        raw = "\n".join(texts[i:j]).encode("ascii")
        buf = _ASCII_LOWER[np.frombuffer(raw, dtype=np.uint8)]
        starts, ends = _ascii_token_spans(buf)
        parts.append(_span_hashes(buf, starts, ends))
        doc_ends = np.cumsum(np.fromiter(map(len, texts[i:j]), dtype=np.int64, count=j - i) + 1)
        lens[i:j] = np.bincount(np.searchsorted(doc_ends, starts, side="right"), minlength=j - i)
        i = j
    flat = np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64)
    return flat, lens


@cache
def _base_power(k: int) -> np.uint64:
    """NGRAM_BASE^k mod 2^64."""
    return np.uint64(pow(int(NGRAM_BASE), k, 1 << 64))


def ngram_hashes(hashes: np.ndarray, n: int) -> np.ndarray:
    """Hash of every word n-gram: h = sum(t[i+k] * BASE^(n-1-k)) mod 2^64, one numpy pass per k."""
    m = len(hashes) - n + 1
    if m <= 0:
        return np.empty(0, dtype=np.uint64)
    h = hashes[:m].copy()
    for k in range(1, n):
        h *= NGRAM_BASE
        h += hashes[k:k + m]
    return h


def ngram_hash_py(token_list: list[str]) -> int:
    """The same n-gram hash in plain Python (the reference for tests and benchmarks)."""
    h = 0
    for t in token_list:
        h = (h * int(NGRAM_BASE) + token_hash(t)) & _MASK64
    return h


_FIELD_BITS = 64  # a count summed over one document stays far below 2^64
# the narrow packing `summed_counts` keeps in its tables: 20 bits a count, for words whose counts
# are all below 2^8, summed over documents of fewer than 2^12 words (so no count carries into the
# next: 255 * 4095 < 2^20). Fewer 30-bit digits per int make the sum about twice as fast.
_NARROW_BITS, _NARROW_VALUE, _NARROW_WORDS = 20, 1 << 8, 1 << 12


def pack_counts(*counts: int, bits: int = _FIELD_BITS) -> int:
    """Non-negative counts in one int, `bits` each: a per-word cache of packed counts lets one
    C-level `sum(map(cache.__getitem__, words))` add up every count of a document at once."""
    out = 0
    for i, c in enumerate(counts):
        out |= c << (i * bits)
    return out


def unpack_counts(total: int, k: int, bits: int = _FIELD_BITS) -> tuple[int, ...]:
    """The `k` counts of a sum of `pack_counts` values."""
    mask = (1 << bits) - 1
    return tuple((total >> (i * bits)) & mask for i in range(k))


def _table_entry(counts: tuple[int, ...]) -> int | tuple[int, ...]:
    """A word's entry in a `summed_counts` table: its counts packed narrow, or the tuple itself when
    one is too large for that (the C-level sum then fails on it, and the document is summed wide)."""
    return pack_counts(*counts, bits=_NARROW_BITS) if max(counts, default=0) < _NARROW_VALUE else tuple(counts)


def summed_counts(words: list[str], table: dict[str, int | tuple], values, k: int) -> tuple[int, ...]:
    """The `k` per-word counts `values(word)` summed over `words`, through `table` (word -> packed
    counts, kept by the caller across documents: a corpus has few distinct words), in one C-level sum."""
    try:
        if len(words) < _NARROW_WORDS:
            return unpack_counts(sum(map(table.__getitem__, words)), k, _NARROW_BITS)
    except KeyError:
        if len(table) > 1_000_000:
            table.clear()
        for w in words:
            if w not in table:
                table[w] = _table_entry(tuple(values(w)))
        return summed_counts(words, table, values, k)
    except TypeError:  # a word with a count of 2^8 or more (a very long token): summed wide, below
        pass
    totals = [0] * k
    for w in words:
        e = table.get(w)
        if e is None:
            e = table[w] = _table_entry(tuple(values(w)))
        for i, c in enumerate(e if isinstance(e, tuple) else unpack_counts(e, k, _NARROW_BITS)):
            totals[i] += c
    return tuple(totals)


def normalized_text(tokens: list[str]) -> str:
    """What exact dedup compares: lower-case word tokens joined by one space (punctuation, case and
    spacing differences do not make two documents different)."""
    return " ".join(tokens)


def decode_text(value: bytes | str | None) -> tuple[str, bool]:
    """Text from a raw cell; invalid UTF-8 bytes become U+FFFD and are reported (True)."""
    if value is None:
        return "", False
    if isinstance(value, str):
        return value, False
    try:
        return value.decode("utf-8"), False
    except UnicodeDecodeError:
        return value.decode("utf-8", errors="replace"), True


@dataclass
class Doc:
    """One document as the annotators see it."""

    id: str
    text: str
    prompt: str = ""
    slots: dict[str, Any] = field(default_factory=dict)
    finish_reason: str | None = None
    error: str | None = None
    invalid_utf8: bool = False
    tokens: list[str] = field(init=False)
    hashes: np.ndarray = field(init=False)
    _ngrams: dict[int, np.ndarray] = field(init=False, default_factory=dict)
    _sorted: dict[int, np.ndarray] = field(init=False, default_factory=dict)
    _word_chars: np.ndarray | None = field(init=False, default=None)
    # views of the text several annotators need, made once on first use (release() drops them)
    _lower: str | None = field(init=False, default=None, repr=False)
    _words: list[str] | None = field(init=False, default=None, repr=False)
    _token_set: set[str] | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self._lower = self.text.lower()
        self.tokens = WORD_RE.findall(self._lower)
        self.hashes = token_hashes(self.tokens)

    @property
    def lower(self) -> str:
        """`text.lower()`."""
        if self._lower is None:
            self._lower = self.text.lower()
        return self._lower

    @property
    def words(self) -> list[str]:
        """`text.split()`: the whitespace-separated words (Gopher's rules, textstat, junk counts)."""
        if self._words is None:
            self._words = self.text.split()
        return self._words

    @property
    def token_set(self) -> set[str]:
        """The distinct word tokens (do not modify)."""
        if self._token_set is None:
            self._token_set = set(self.tokens)
        return self._token_set

    def ngrams(self, n: int) -> np.ndarray:
        """Hashes of the word n-grams (cached). From the longest cached k-grams below n (or half
        of n): h_n[i] = h_k[i] * BASE^(n-k) + h_(n-k)[i+k] (mod 2^64, exactly the polynomial
        hash), so the 13-grams of decontamination come from the 5-grams in two steps, not eight."""
        cached = self._ngrams
        got = cached.get(n)
        if got is not None:
            return got
        if n == 1:
            got = self.hashes
        else:
            k = n - 1
            while k > 1 and k not in cached:
                k -= 1
            if k == 1:  # nothing cached: halves, so that building n-grams takes about log2(n) steps
                k = n - n // 2
            m = len(self.hashes) - n + 1
            if m <= 0:
                got = np.empty(0, dtype=np.uint64)
            else:
                got = self.ngrams(k)[:m] * _base_power(n - k) + self.ngrams(n - k)[k:k + m]
        cached[n] = got
        return got

    def sorted_ngrams(self, n: int) -> np.ndarray:
        got = self._sorted.get(n)
        if got is None:
            got = self._sorted[n] = np.sort(self.ngrams(n))
        return got

    @property
    def word_chars(self) -> np.ndarray:
        """Characters of each word token."""
        if self._word_chars is None:
            self._word_chars = np.fromiter(map(len, self.tokens), dtype=np.int64, count=len(self.tokens))
        return self._word_chars

    def release(self) -> None:
        self._ngrams.clear()
        self._sorted.clear()
        self._word_chars = None
        self._lower = self._words = self._token_set = None


def contains(sorted_values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Bool per element of x: is it in sorted_values (a vectorized binary search)."""
    if len(sorted_values) == 0:
        return np.zeros(len(x), dtype=bool)
    pos = np.searchsorted(sorted_values, x)
    pos[pos == len(sorted_values)] = 0
    return sorted_values[pos] == x


def parse_slots(value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    try:
        got = json.loads(value)
    except (TypeError, ValueError):
        return {}
    return got if isinstance(got, dict) else {}
