"""Gopher-style repetition (Rae et al. 2021, "Scaling Language Models", appendix A, table A1).

Columns and default thresholds (a document is dropped when a value is above its threshold):
  dup_line_frac 0.30, dup_para_frac 0.30        share of lines / paragraphs that repeat an earlier one
  dup_line_char_frac 0.20, dup_para_char_frac 0.20   share of characters in those repeated lines / paragraphs
  top_2gram_char_frac 0.20, top_3gram 0.18, top_4gram 0.16
                                                 characters of the most frequent word n-gram (if it occurs
                                                 more than once) times its count, over all word characters;
                                                 among tied most frequent n-grams, the one with the most
                                                 characters (a fixed rule: the words used do not matter)
  dup_5gram_char_frac 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10
                                                 share of word characters covered by n-grams that occur
                                                 more than once (each character counted once)
Everything on words works from the document's n-gram hashes (numpy), not Python tuples;
`annotate_batch` (a whole shard) computes the word columns of many documents at once
(filters/ngram_batch.py), equal to `annotate`'s.

`definition = "datatrove"` computes the same columns the way datatrove's GopherRepetitionFilter does
(spaCy's blank English tokenizer, punctuation tokens included; the top n-gram counts even when it
occurs once, ties go to the first to occur; duplicate n-grams count only the second and later
copies, skipping past a hit; every share is over `len(text)`), to reproduce a datatrove pipeline.
"""
from __future__ import annotations

import re
from collections import Counter
from functools import cached_property, lru_cache
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field

from filters.base import Annotator, AnnotatorConfig
from filters.ngram_batch import NgramBatch, chunks, repetition_fracs
from filters.text import contains

TOP_NGRAMS = {2: 0.20, 3: 0.18, 4: 0.16}
DUP_NGRAMS = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}
_PARA_SPLIT = re.compile(r"\n\s*\n")
_TOP_KEYS = {n: f"top_{n}gram_char_frac" for n in TOP_NGRAMS}
_DUP_KEYS = {n: f"dup_{n}gram_char_frac" for n in DUP_NGRAMS}


class RepetitionConfig(AnnotatorConfig):
    max_dup_line_frac: float = Field(0.30, ge=0, le=1)
    max_dup_para_frac: float = Field(0.30, ge=0, le=1)
    max_dup_line_char_frac: float = Field(0.20, ge=0, le=1)
    max_dup_para_char_frac: float = Field(0.20, ge=0, le=1)
    max_top_ngram_char_frac: dict[int, float] = Field(default_factory=lambda: dict(TOP_NGRAMS), description="n -> threshold, n in 2..4")
    max_dup_ngram_char_frac: dict[int, float] = Field(default_factory=lambda: dict(DUP_NGRAMS), description="n -> threshold, n in 5..10")
    definition: Literal["gopher", "datatrove"] = Field(
        "gopher", description="gopher: the paper's wording (see the module docstring); datatrove: datatrove's numbers")


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


def line_para_values(text: str) -> dict[str, Any]:
    """The line and paragraph columns (dup_line_frac, dup_line_char_frac, dup_para_frac, dup_para_char_frac)."""
    lines = [s for s in (x.strip() for x in text.split("\n")) if s]
    paras = [s for s in (x.strip() for x in (_PARA_SPLIT.split(text) if "\n" in text else [text])) if s]
    v: dict[str, Any] = {}
    v["dup_line_frac"], v["dup_line_char_frac"] = duplicate_fracs(lines, len(text))
    v["dup_para_frac"], v["dup_para_char_frac"] = duplicate_fracs(paras, len(text))
    return v


def top_ngram_char_frac(ngrams: np.ndarray, sorted_ngrams: np.ndarray, word_chars: np.ndarray, n: int, total: int) -> float:
    if len(ngrams) < 2 or total == 0:
        return 0.0
    s = sorted_ngrams
    repeated = s[1:][s[1:] == s[:-1]]  # a repeated n-gram once per occurrence after its first
    if len(repeated) == 0:  # the most frequent n-gram occurs once
        return 0.0
    # counted in Python: a few values, fewer steps than run lengths in numpy
    extra = Counter(repeated.tolist())
    most = max(extra.values())
    top = most + 1
    # every position whose n-gram occurs `top` times; among tied n-grams the one with the most characters
    tied = [h for h, k in extra.items() if k == most]
    at = ngrams == np.uint64(tied[0]) if len(tied) == 1 else contains(np.array(sorted(tied), dtype=np.uint64), ngrams)
    cs = np.concatenate(([0], np.cumsum(word_chars)))
    p = np.flatnonzero(at)
    chars = int((cs[p + n] - cs[p]).max())
    return float(chars * top / total)


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
        if self.cfg.definition == "datatrove":
            v = datatrove_values(doc.text)
            return v, self._datatrove_reason(v)
        v = line_para_values(doc.text)
        word_chars = doc.word_chars
        total = int(word_chars.sum())
        for n, key in _TOP_KEYS.items():
            v[key] = top_ngram_char_frac(doc.ngrams(n), doc.sorted_ngrams(n), word_chars, n, total)
        none_repeated = False
        for n, key in _DUP_KEYS.items():  # no repeated n-gram means no repeated (n+1)-gram
            v[key] = 0.0 if none_repeated else dup_ngram_char_frac(doc.ngrams(n), doc.sorted_ngrams(n), word_chars, n, total)
            none_repeated = v[key] == 0.0
        return v, self._reason(v)

    def annotate_batch(self, docs: list) -> list[tuple[dict[str, Any], str | None]]:
        """`annotate` of every document, the word n-gram columns computed for up to 4,095
        documents at a time with a few numpy calls each (filters/ngram_batch.py; n-grams compared
        on the top 52 bits of their hashes within a document, see there). The datatrove definition
        goes document by document."""
        if self.cfg.definition == "datatrove":
            return [self.annotate(d) for d in docs]
        out: list[tuple[dict[str, Any], str | None]] = []
        for _, chunk in chunks(docs):
            b = NgramBatch.of(chunk)
            fracs = repetition_fracs(b, _TOP_KEYS, _DUP_KEYS)
            cols = {key: fracs[n].tolist() for keys in (_TOP_KEYS, _DUP_KEYS) for n, key in keys.items()}
            keys = list(cols)
            for d, row in zip(chunk, zip(*cols.values())):
                v = line_para_values(d.text)
                v.update(zip(keys, row))
                out.append((v, self._reason(v)))
        return out

    @cached_property
    def _checks(self) -> list[tuple[str, float]]:
        """(column, threshold) in the order the drop reason is looked for: lines and paragraphs,
        then the top n-grams and the duplicate n-grams by n (thresholds for an n without a
        column are ignored)."""
        c = self.cfg
        out = [(key, getattr(c, f"max_{key}")) for key in ("dup_line_frac", "dup_para_frac", "dup_line_char_frac", "dup_para_char_frac")]
        out += [(_TOP_KEYS[n], limit) for n, limit in sorted(c.max_top_ngram_char_frac.items()) if n in _TOP_KEYS]
        out += [(_DUP_KEYS[n], limit) for n, limit in sorted(c.max_dup_ngram_char_frac.items()) if n in _DUP_KEYS]
        return out

    def _reason(self, v: dict[str, Any]) -> str | None:
        for key, limit in self._checks:
            if v[key] > limit:
                return f"repetition:{key}"
        return None

    def _datatrove_reason(self, v: dict[str, Any]) -> str | None:
        """datatrove's order of checks (paragraphs before lines); a threshold of 0 turns a check off."""
        c = self.cfg
        for key in ("dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac"):
            limit = getattr(c, f"max_{key}")
            if limit and v[key] > limit:
                return f"repetition:{key}"
        for group, limits in (("top_{}gram_char_frac", c.max_top_ngram_char_frac),
                              ("dup_{}gram_char_frac", c.max_dup_ngram_char_frac)):
            for n, limit in sorted(limits.items()):
                key = group.format(n)
                if limit and key in v and v[key] > limit:
                    return f"repetition:{key}"
        return None


# ---- datatrove's definitions (datatrove/pipeline/filters/gopher_repetition_filter.py) -------------
_DT_PARA = re.compile(r"\n{2,}")
_DT_LINE = re.compile("\n+")


@lru_cache(maxsize=1)
def _spacy_blank_en():
    import spacy  # a dependency already (the vocabulary annotator); loaded only for this definition

    return spacy.blank("en")


def datatrove_words(text: str) -> list[str]:
    """datatrove's English word split: spaCy's blank English tokenizer, stripped, empty tokens dropped."""
    nlp = _spacy_blank_en()
    nlp.max_length = len(text) + 10
    return [t for t in (tok.text.strip() for tok in nlp.make_doc(text)) if t]


def _dt_duplicates(elements: list[str]) -> tuple[int, int]:
    seen: set[str] = set()
    dup = chars = 0
    for e in elements:
        if e in seen:
            dup += 1
            chars += len(e)
        else:
            seen.add(e)
    return dup, chars


def _dt_top(words: list[str], n: int) -> int:
    grams = [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0
    gram, count = Counter(grams).most_common(1)[0]  # ties: the first to occur
    return len(gram) * count


def _dt_all_duplicate(words: list[str], n: int) -> int:
    seen: set[str] = set()
    chars = i = 0
    while i < len(words) - n + 1:
        gram = "".join(words[i:i + n])
        if gram in seen:
            chars += len(gram)
            i += n
        else:
            seen.add(gram)
            i += 1
    return chars


def datatrove_values(text: str) -> dict[str, float]:
    """The repetition columns as datatrove computes them (0.0 everywhere for an empty text)."""
    keys = list(RepetitionAnnotator.columns)
    if not text:
        return dict.fromkeys(keys, 0.0)
    total = len(text)
    v: dict[str, float] = {}
    paras = _DT_PARA.split(text.strip())
    d, c = _dt_duplicates(paras)
    v["dup_para_frac"], v["dup_para_char_frac"] = d / len(paras), c / total
    lines = _DT_LINE.split(text)
    d, c = _dt_duplicates(lines)
    v["dup_line_frac"], v["dup_line_char_frac"] = d / len(lines), c / total
    words = datatrove_words(text)
    for n in TOP_NGRAMS:
        v[f"top_{n}gram_char_frac"] = _dt_top(words, n) / total
    for n in DUP_NGRAMS:
        v[f"dup_{n}gram_char_frac"] = _dt_all_duplicate(words, n) / total
    return {k: v[k] for k in keys}
