"""Transforms: one corpus's text into another's. A registry, name -> class; each class has a pydantic
`Params` (the recipe's `[transform.params]`, checked on load) and says whether it needs an LLM.

Deterministic transforms (controls for ablations) are pure functions of the text and a
`random.Random` seeded from (recipe seed, source id), so the same recipe gives the same bytes:
  shuffle_sentences   the document's sentences in a random order
  shuffle_words       each sentence's words in a random order (its end punctuation stays at the end)
  truncate            the first `max_words` words, or the first `fraction` of them
LLM transforms render a prompt template (prompts/templates/) from the source document and go through
the generation machinery (backends, request cache, failed rows, usage):
  rewrite      the same content in simpler words, re-asked while the answer's OOV rate is too high
  translate    the document in another language
  generate_in  a new document written from a template in another language (same slots as the source)
"""
from __future__ import annotations

import hashlib
import json
import random
import re
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

# a sentence: text up to a run of end marks (Latin, ellipsis, Devanagari/Bengali danda), with any
# closing quotes or brackets after it; the last sentence may lack an end mark
SENTENCE_RE = re.compile(r"[^.!?…।॥]*[^.!?…।॥\s][^.!?…।॥]*(?:[.!?…।॥]+[\"'”’)\]]*|$)|[.!?…।॥]+", re.S)
_END_RE = re.compile(r"[.!?…।॥]+[\"'”’)\]]*$")


def split_sentences(text: str) -> list[str]:
    """The sentences of a text, stripped, in order (joining them with spaces keeps every non-space
    character of the text)."""
    return [s for s in (m.group(0).strip() for m in SENTENCE_RE.finditer(text)) if s]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Transform:
    name: ClassVar[str]
    Params: ClassVar[type[BaseModel]] = Params
    uses_llm: ClassVar[bool] = False

    def __init__(self, params: BaseModel):
        self.params = params

    def apply(self, text: str, rng: random.Random) -> str:
        """A deterministic transform's output (LLM transforms are run by the transform stage)."""
        raise NotImplementedError(f"transform {self.name!r} needs an LLM")


class ShuffleSentences(Transform):
    name = "shuffle_sentences"

    def apply(self, text: str, rng: random.Random) -> str:
        sentences = split_sentences(text)
        rng.shuffle(sentences)
        return " ".join(sentences)


class ShuffleWords(Transform):
    name = "shuffle_words"

    def apply(self, text: str, rng: random.Random) -> str:
        out = []
        for s in split_sentences(text):
            m = _END_RE.search(s)
            end = m.group(0) if m else ""
            words = s[: len(s) - len(end)].split()
            rng.shuffle(words)
            out.append(" ".join(words) + end)
        return " ".join(out)


class TruncateParams(Params):
    max_words: int | None = Field(None, gt=0, description="keep the first this many words")
    fraction: float | None = Field(None, gt=0, le=1, description="keep the first this share of the words (rounded up)")

    @model_validator(mode="after")
    def _one(self):
        if (self.max_words is None) == (self.fraction is None):
            raise ValueError("give exactly one of max_words and fraction")
        return self


class Truncate(Transform):
    name = "truncate"
    Params = TruncateParams

    def apply(self, text: str, rng: random.Random) -> str:
        spans = [m.span() for m in re.finditer(r"\S+", text)]
        p = self.params
        keep = p.max_words if p.max_words is not None else -(-len(spans) * p.fraction // 1)
        keep = int(min(keep, len(spans)))
        return text[: spans[keep - 1][1]] if keep else ""


class LLMParams(Params):
    template: str = Field(description="prompt template (prompts/templates/<name>.toml, or a path)")


class RewriteParams(LLMParams):
    template: str = "rewrite"
    max_oov_rate: float = Field(0.05, ge=0, le=1, description="an answer above this OOV rate is asked again")
    max_rounds: int = Field(3, ge=1, le=10, description="asks per document, the first included")
    named_words: int = Field(12, ge=1, description="at most this many offending words named in a re-ask")


class Rewrite(Transform):
    name = "rewrite"
    Params = RewriteParams
    uses_llm = True


class TranslateParams(LLMParams):
    template: str = "translate"
    target_language: str = Field("Hindi", description="the language to translate into, by name (goes into the prompt)")
    source_language: str = "English"


class Translate(Transform):
    name = "translate"
    Params = TranslateParams
    uses_llm = True


class GenerateInParams(LLMParams):
    template: str = "generate_in_hi"


class GenerateIn(Transform):
    name = "generate_in"
    Params = GenerateInParams
    uses_llm = True


TRANSFORMS: dict[str, type[Transform]] = {
    "shuffle_sentences": ShuffleSentences,
    "shuffle_words": ShuffleWords,
    "truncate": Truncate,
    "rewrite": Rewrite,
    "translate": Translate,
    "generate_in": GenerateIn,
}


class TransformError(ValueError):
    """An unknown transform or bad parameters, as one line."""


def make_transform(name: str, params: dict[str, Any] | None = None) -> Transform:
    if name not in TRANSFORMS:
        raise TransformError(f"unknown transform {name!r} (known: {', '.join(TRANSFORMS)})")
    cls = TRANSFORMS[name]
    try:
        return cls(cls.Params.model_validate(params or {}))
    except Exception as e:
        from pydantic import ValidationError

        if isinstance(e, ValidationError):
            err = e.errors()[0]
            loc = ".".join(str(x) for x in err["loc"])
            raise TransformError(f"transform.params{'.' + loc if loc else ''}: {err['msg']}") from None
        raise


def transform_rng(seed: int, source_id: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}\x1ftransform\x1f{source_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def target_id(recipe: str, transform: Transform, source_id: str) -> str:
    """The transformed document's id: recipe, transform, parameters and source id (stable on re-runs)."""
    blob = json.dumps([recipe, transform.name, transform.params.model_dump(mode="json"), source_id],
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:20]
