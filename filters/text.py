"""A document prepared once for every annotator: text, lower-case word tokens and their hashes.

Word tokens are runs of letters or digits (an apostrophe may join two runs: "don't"), taken from
the lower-cased text by one regex. Each distinct token is hashed once per process (a dict cache:
a corpus has few distinct word forms); word n-gram hashes are then built with numpy from the
token hashes, so that shingling, repetition, diversity, echo and decontamination checks never
build Python n-gram tuples.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

WORD_RE = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
# polynomial base for n-gram hashes (odd, so that multiplication mod 2^64 is a bijection)
NGRAM_BASE = np.uint64(0x9E3779B97F4A7C15)
_MASK64 = (1 << 64) - 1
_TOKEN_CACHE: dict[str, int] = {}
_TOKEN_CACHE_MAX = 2_000_000


def token_hash(token: str) -> int:
    """64-bit hash of one token (blake2b, so it is the same in every process and on every run)."""
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest(), "little")


def token_hashes(tokens: list[str]) -> np.ndarray:
    cache = _TOKEN_CACHE
    try:  # the common case: every token seen before (a C-level loop)
        return np.fromiter(map(cache.__getitem__, tokens), dtype=np.uint64, count=len(tokens))
    except KeyError:
        pass
    if len(cache) > _TOKEN_CACHE_MAX:  # a flood of distinct junk tokens must not grow memory forever
        cache.clear()
    for t in tokens:
        if t not in cache:
            cache[t] = token_hash(t)
    return np.fromiter(map(cache.__getitem__, tokens), dtype=np.uint64, count=len(tokens))


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

    def __post_init__(self) -> None:
        self.tokens = WORD_RE.findall(self.text.lower())
        self.hashes = token_hashes(self.tokens)

    def ngrams(self, n: int) -> np.ndarray:
        """Hashes of the word n-grams (cached; n-gram k+1 is built from n-gram k)."""
        got = self._ngrams.get(n)
        if got is not None:
            return got
        if n == 1:
            got = self.hashes
        else:
            prev = self.ngrams(n - 1)
            m = len(self.hashes) - n + 1
            if m <= 0:
                got = np.empty(0, dtype=np.uint64)
            else:
                got = prev[:m] * NGRAM_BASE + self.hashes[n - 1:n - 1 + m]
        self._ngrams[n] = got
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
