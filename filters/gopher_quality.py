"""Gopher's quality rules (Rae et al. 2021, "Scaling Language Models", appendix A.1.1), with the
published defaults. Words are whitespace-separated tokens, as in the paper.

 - word count between 50 and 100,000                     (`gopher_word_count`)
 - mean word length between 3 and 10 characters          (`mean_word_length`, punctuation stripped)
 - symbol-to-word ratio at most 0.1, for "#" and ellipses  (`symbol_word_ratio`)
 - at most 90% of lines starting with a bullet point      (`bullet_lines_frac`)
 - at most 30% of lines ending with an ellipsis           (`ellipsis_lines_frac`)
 - at least 80% of words with an alphabetic character     (`alpha_words_frac`)
 - at least 2 of the stop words the, be, to, of, and, that, have, with  (`stop_word_count`); in
   another language (`language`), the 8 most frequent words of wordfreq's list for it stand in
   for Gopher's English ones
"""
from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
from pydantic import Field
from wordfreq import top_n_list

from filters.base import Annotator, AnnotatorConfig
from filters.text import summed_counts

STOP_WORDS = frozenset(["the", "be", "to", "of", "and", "that", "have", "with"])
BULLETS = ("•", "●", "○", "▪", "▫", "■", "□", "◦", "‣", "⁃", "-", "*", "–", "—")
ELLIPSES = ("...", "…")
_ALPHA = re.compile(r"[^\W\d_]")  # a letter (str.isalpha, in C)
_PUNCT = "\"'“”‘’.,!?;:()[]{}<>-–—…*_"


class GopherQualityConfig(AnnotatorConfig):
    min_words: int = Field(50, ge=0)
    max_words: int = Field(100_000, ge=1)
    min_mean_word_length: float = Field(3.0, ge=0)
    max_mean_word_length: float = Field(10.0, gt=0)
    max_symbol_word_ratio: float = Field(0.1, ge=0)
    max_bullet_lines_frac: float = Field(0.9, ge=0, le=1)
    max_ellipsis_lines_frac: float = Field(0.3, ge=0, le=1)
    min_alpha_words_frac: float = Field(0.8, ge=0, le=1)
    min_stop_words: int = Field(2, ge=0)
    language: str = Field("en", description="English uses Gopher's stop words; another language its 8 most frequent words")


def stop_words_for(language: str) -> frozenset[str]:
    if language == "en":
        return STOP_WORDS
    return frozenset(top_n_list(language, 8))


def word_values(w: str, stop_words: frozenset[str]) -> tuple[int, int, int, int]:
    """For one whitespace-separated word: (characters left after stripping punctuation, 1 if any are
    left, 1 if it is a stop word (lower case, stripped), 1 if it has no letter)."""
    stripped = w.strip(_PUNCT)
    return len(stripped), int(bool(stripped)), int(w.lower().strip(_PUNCT) in stop_words), int(not _ALPHA.search(w))


def gopher_metrics(text: str, stop_words: frozenset[str] = STOP_WORDS, words: list[str] | None = None,
                   cache: dict[str, int] | None = None) -> dict[str, Any]:
    """`words`: `text.split()` when the caller has it; `cache`: word -> packed `word_values` for
    these stop words, kept by the caller across documents (a corpus has few distinct words)."""
    words = text.split() if words is None else words
    cache = {} if cache is None else cache
    chars, kept, stops, no_letter = summed_counts(words, cache, lambda w: word_values(w, stop_words), 4)
    n = len(words)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    symbols = text.count("#") + text.count("...") + text.count("…")
    return {
        "gopher_word_count": n,
        "mean_word_length": chars / kept if kept else 0.0,
        "symbol_word_ratio": symbols / n if n else 0.0,
        "bullet_lines_frac": sum(ln.startswith(BULLETS) for ln in lines) / len(lines) if lines else 0.0,
        "ellipsis_lines_frac": sum(ln.endswith(ELLIPSES) for ln in lines) / len(lines) if lines else 0.0,
        "alpha_words_frac": (n - no_letter) / n if n else 0.0,
        "stop_word_count": stops,
    }


class GopherQualityAnnotator(Annotator):
    name = "gopher_quality"
    Config = GopherQualityConfig
    columns = {"gopher_word_count": pa.int64(), "mean_word_length": pa.float64(), "symbol_word_ratio": pa.float64(),
               "bullet_lines_frac": pa.float64(), "ellipsis_lines_frac": pa.float64(),
               "alpha_words_frac": pa.float64(), "stop_word_count": pa.int64()}

    def __init__(self, cfg, resources):
        super().__init__(cfg, resources)
        self.stop_words = stop_words_for(cfg.language)
        self._word_values: dict[str, int | tuple] = {}  # word -> its word_values, packed (summed_counts)

    def annotate(self, doc) -> tuple[dict[str, Any], str | None]:
        v = gopher_metrics(doc.text, self.stop_words, doc.words, self._word_values)
        c = self.cfg
        if not c.min_words <= v["gopher_word_count"] <= c.max_words:
            return v, "gopher_quality:word_count"
        if not c.min_mean_word_length <= v["mean_word_length"] <= c.max_mean_word_length:
            return v, "gopher_quality:mean_word_length"
        if v["symbol_word_ratio"] > c.max_symbol_word_ratio:
            return v, "gopher_quality:symbol_word_ratio"
        if v["bullet_lines_frac"] > c.max_bullet_lines_frac:
            return v, "gopher_quality:bullet_lines"
        if v["ellipsis_lines_frac"] > c.max_ellipsis_lines_frac:
            return v, "gopher_quality:ellipsis_lines"
        if v["alpha_words_frac"] < c.min_alpha_words_frac:
            return v, "gopher_quality:alpha_words"
        if v["stop_word_count"] < c.min_stop_words:
            return v, "gopher_quality:stop_words"
        return v, None
