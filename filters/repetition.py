"""Gopher-style repetition (Rae et al. 2021, "Scaling Language Models", appendix A, table A1).

Columns and default thresholds (a document is dropped when a value is above its threshold):
  dup_line_frac 0.30, dup_para_frac 0.30        share of lines / paragraphs that repeat an earlier one
  dup_line_char_frac 0.20, dup_para_char_frac 0.20   share of characters in those repeated lines / paragraphs
  top_2gram_char_frac 0.20, top_3gram 0.18, top_4gram 0.16
                                                 characters of the most frequent word n-gram (if it occurs
                                                 more than once) times its count, over all word characters
  dup_5gram_char_frac 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10
                                                 share of word characters covered by n-grams that occur
                                                 more than once (each character counted once)
Everything on words works from the document's n-gram hashes (numpy), not Python tuples.
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import Field

from filters.base import Annotator, AnnotatorConfig
from filters.text import contains

TOP_NGRAMS = {2: 0.20, 3: 0.18, 4: 0.16}
DUP_NGRAMS = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}
_PARA_SPLIT = re.compile(r"\n\s*\n")


class RepetitionConfig(AnnotatorConfig):
    max_dup_line_frac: float = Field(0.30, ge=0, le=1)
    max_dup_para_frac: float = Field(0.30, ge=0, le=1)
    max_dup_line_char_frac: float = Field(0.20, ge=0, le=1)
    max_dup_para_char_frac: float = Field(0.20, ge=0, le=1)
    max_top_ngram_char_frac: dict[int, float] = Field(default_factory=lambda: dict(TOP_NGRAMS), description="n -> threshold, n in 2..4")
    max_dup_ngram_char_frac: dict[int, float] = Field(default_factory=lambda: dict(DUP_NGRAMS), description="n -> threshold, n in 5..10")


def duplicate_fracs(elements: list[str], total_chars: int) -> tuple[float, float]:
    """(share of elements equal to an earlier one, share of characters in them)."""
    if not elements:
        return 0.0, 0.0
    seen: set[str] = set()
    dup, dup_chars = 0, 0
    for e in elements:
        if e in seen:
            dup += 1
            dup_chars += len(e)
        else:
            seen.add(e)
    return dup / len(elements), (dup_chars / total_chars if total_chars else 0.0)


def top_ngram_char_frac(ngrams: np.ndarray, sorted_ngrams: np.ndarray, word_chars: np.ndarray, n: int, total: int) -> float:
    if len(ngrams) < 2 or total == 0:
        return 0.0
    s = sorted_ngrams
    starts = np.concatenate(([0], np.flatnonzero(s[1:] != s[:-1]) + 1))
    runs = np.diff(np.append(starts, len(s)))
    k = int(np.argmax(runs))
    top = int(runs[k])
    if top < 2:
        return 0.0
    first = int(np.argmax(ngrams == s[starts[k]]))  # the first most frequent n-gram (ties: smallest hash)
    return float(word_chars[first:first + n].sum() * top / total)


def dup_ngram_char_frac(ngrams: np.ndarray, sorted_ngrams: np.ndarray, word_chars: np.ndarray, n: int, total: int) -> float:
    if len(ngrams) < 2 or total == 0:
        return 0.0
    s = sorted_ngrams
    eq = s[1:] == s[:-1]
    if not eq.any():
        return 0.0
    starts = contains(np.unique(s[1:][eq]), ngrams)
    # words covered by a repeated n-gram starting at p: p..p+n-1 (a running sum of +1/-1 marks)
    marks = np.zeros(len(word_chars) + 1, dtype=np.int32)
    idx = np.flatnonzero(starts)
    marks[idx] += 1  # idx are distinct, so plain fancy-index adds are exact
    marks[idx + n] -= 1
    covered = np.cumsum(marks[:-1]) > 0
    return float(word_chars[covered].sum() / total)


class RepetitionAnnotator(Annotator):
    name = "repetition"
    Config = RepetitionConfig
    columns = {
        "dup_line_frac": pa.float64(), "dup_para_frac": pa.float64(),
        "dup_line_char_frac": pa.float64(), "dup_para_char_frac": pa.float64(),
        **{f"top_{n}gram_char_frac": pa.float64() for n in TOP_NGRAMS},
        **{f"dup_{n}gram_char_frac": pa.float64() for n in DUP_NGRAMS},
    }

    def annotate(self, doc) -> tuple[dict[str, Any], str | None]:
        text = doc.text
        lines = [s for s in (x.strip() for x in text.split("\n")) if s]
        paras = [s for s in (x.strip() for x in _PARA_SPLIT.split(text)) if s]
        v: dict[str, Any] = {}
        v["dup_line_frac"], v["dup_line_char_frac"] = duplicate_fracs(lines, len(text))
        v["dup_para_frac"], v["dup_para_char_frac"] = duplicate_fracs(paras, len(text))
        word_chars = doc.word_chars
        total = int(word_chars.sum())
        for n in TOP_NGRAMS:
            v[f"top_{n}gram_char_frac"] = top_ngram_char_frac(doc.ngrams(n), doc.sorted_ngrams(n), word_chars, n, total)
        none_repeated = False
        for n in DUP_NGRAMS:  # no repeated n-gram means no repeated (n+1)-gram
            v[f"dup_{n}gram_char_frac"] = 0.0 if none_repeated else dup_ngram_char_frac(doc.ngrams(n), doc.sorted_ngrams(n), word_chars, n, total)
            none_repeated = v[f"dup_{n}gram_char_frac"] == 0.0
        c = self.cfg
        for key in ("dup_line_frac", "dup_para_frac", "dup_line_char_frac", "dup_para_char_frac"):
            if v[key] > getattr(c, f"max_{key}"):
                return v, f"repetition:{key}"
        for n, limit in sorted(c.max_top_ngram_char_frac.items()):
            key = f"top_{n}gram_char_frac"
            if key in v and v[key] > limit:
                return v, f"repetition:{key}"
        for n, limit in sorted(c.max_dup_ngram_char_frac.items()):
            key = f"dup_{n}gram_char_frac"
            if key in v and v[key] > limit:
                return v, f"repetition:{key}"
        return v, None
