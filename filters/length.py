"""Length: words (word tokens), sentences, characters; word-count bounds.

Defaults: 50 words at least (Gopher's lower bound), 1,500 at most (far above any short story; a
run-on document is dropped), no sentence bound.
"""
from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
from pydantic import Field

from filters.base import Annotator, AnnotatorConfig

# a sentence ends at a run of .!? followed by a space, a closing quote or the end
_SENTENCE_END = re.compile(r"[.!?…।॥]+(?=[\s\"'”’)\]]|$)")


def count_sentences(text: str) -> int:
    ends = len(_SENTENCE_END.findall(text))
    tail = text.rstrip().rstrip("\"'”’)]")
    if tail and not tail.endswith((".", "!", "?", "…", "।", "॥")) and any(c.isalnum() for c in tail[-200:]):
        ends += 1  # an unfinished last sentence still counts
    return ends


class LengthConfig(AnnotatorConfig):
    min_words: int = Field(50, ge=0, description="drop below this many words")
    max_words: int | None = Field(1500, ge=1, description="drop above this many words (None: no bound)")
    min_sentences: int = Field(0, ge=0, description="drop below this many sentences")


class LengthAnnotator(Annotator):
    name = "length"
    Config = LengthConfig
    columns = {"word_count": pa.int64(), "sentence_count": pa.int64(), "char_count": pa.int64()}

    def annotate(self, doc) -> tuple[dict[str, Any], str | None]:
        words = len(doc.tokens)
        values = {"word_count": words, "sentence_count": count_sentences(doc.text), "char_count": len(doc.text)}
        c = self.cfg
        if words < c.min_words:
            return values, "length:too_short"
        if c.max_words is not None and words > c.max_words:
            return values, "length:too_long"
        if values["sentence_count"] < c.min_sentences:
            return values, "length:too_few_sentences"
        return values, None
