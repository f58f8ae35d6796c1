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

    def annotate(self, doc) -> tuple[dict[str, Any], str | None]:
        known, is_word = self._known, self.is_word
        words = [w for w in doc.tokens if not _DIGIT.search(w)]
        frac = sum(known[w] if w in known else is_word(w) for w in words) / len(words) if words else None
        v = {"dict_word_frac": frac}
        if self.cfg.min_dict_word_frac is not None and frac is not None and frac < self.cfg.min_dict_word_frac:
            return v, "dictionary:non_words"
        return v, None
