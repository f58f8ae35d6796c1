"""Dictionary words: the share of word tokens that are words of the language (in wordfreq's English
list, which holds about 320,000 forms, names included). Garbled output ("ooohhehHahAhWelooooLELEY")
and invented spellings fall out of it; a story for children is nearly all dictionary words.

Column `dict_word_frac`; default: drop below 0.9. Tokens with a digit are not counted.
"""
from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
from pydantic import Field

from filters.base import Annotator, AnnotatorConfig

_DIGIT = re.compile(r"\d")


class DictionaryConfig(AnnotatorConfig):
    min_dict_word_frac: float | None = Field(0.9, ge=0, le=1, description="drop below this share of dictionary words")
    language: str = "en"


class DictionaryAnnotator(Annotator):
    name = "dictionary"
    Config = DictionaryConfig
    columns = {"dict_word_frac": pa.float64()}

    def __init__(self, cfg, resources):
        super().__init__(cfg, resources)
        self._known: dict[str, bool] = {}
        self._counts: dict[str, int] = {}  # token -> 0 (has a digit: not counted) or 1 + (is a word) << 32

    def is_word(self, w: str) -> bool:
        k = self._known.get(w)
        if k is None:
            from wordfreq import zipf_frequency

            # "don't" and "cat's" are words when their parts are
            k = all(zipf_frequency(p, self.cfg.language) > 0 for p in w.replace("’", "'").split("'") if p)
            if len(self._known) > 500_000:
                self._known.clear()
            self._known[w] = k
        return k

    def token_count(self, w: str) -> int:
        return 0 if _DIGIT.search(w) else 1 + (int(self.is_word(w)) << 32)

    def annotate(self, doc) -> tuple[dict[str, Any], str | None]:
        # one C-level sum over per-token values counts the tokens without a digit and the words among them
        counts = self._counts
        try:
            total = sum(map(counts.__getitem__, doc.tokens))
        except KeyError:
            if len(counts) > 500_000:
                counts.clear()
            for w in doc.tokens:
                if w not in counts:
                    counts[w] = self.token_count(w)
            total = sum(map(counts.__getitem__, doc.tokens))
        counted, words = total & 0xFFFFFFFF, total >> 32
        frac = words / counted if counted else None
        v = {"dict_word_frac": frac}
        if self.cfg.min_dict_word_frac is not None and frac is not None and frac < self.cfg.min_dict_word_frac:
            return v, "dictionary:non_words"
        return v, None
