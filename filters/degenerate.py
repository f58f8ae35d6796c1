"""Degenerate output: failed requests, empty or undecodable text, text without letters, refusals and
meta text ("As an AI...", "Here is a story:"), an unfinished last sentence, and prompt echo.

Defaults: the refusal phrases and meta openings below; a document ends finished
when its last visible character is one of `.!?` or a closing quote/bracket after one; prompt echo
is the share of the prompt's word 8-grams found in the document, dropped above 0.2.
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import Field

from filters.base import Annotator, AnnotatorConfig
from filters.text import WORD_RE, contains, ngram_hashes, token_hashes

# phrases searched anywhere (lower-case, on word boundaries)
DEFAULT_REFUSALS = [
    "as an ai", "as a language model", "language model", "i'm sorry, but", "i am sorry, but", "i'm unable to",
    "i am unable to", "i cannot help", "i can't help", "i cannot write", "i can't write", "i cannot assist",
    "i can't assist", "the story should", "write a short story", "only uses very simple words", "<|im_start|>", "<|im_end|>",
]
# regexes searched in the first 200 characters only (meta text that opens the answer)
DEFAULT_META_OPENINGS = [
    r"^\s*(?:sure|certainly|of course|okay)\b[!,.]",
    r"^\s*here(?:'s| is) (?:a|an|the|your) (?:\w+ ){0,3}story\b",
    r"^\s*title\s*:",
]
_ENDINGS = tuple(".!?。！？।॥")  # Latin, CJK, Devanagari/Bengali danda
_CLOSERS = "\"'”’)]*»"


class DegenerateConfig(AnnotatorConfig):
    refusal_phrases: list[str] = Field(default_factory=lambda: list(DEFAULT_REFUSALS), description="phrases (case-insensitive, on word boundaries) that mark a refusal or meta text anywhere")
    meta_openings: list[str] = Field(default_factory=lambda: list(DEFAULT_META_OPENINGS), description="regexes (case-insensitive) for meta text in the first 200 characters")
    drop_unfinished: bool = Field(True, description="drop a document whose last sentence is cut off")
    trim_unfinished: bool = Field(False, description="a story whose last sentence is unfinished (cut by max_tokens, or the model stopped mid-sentence) is cut back to its last complete sentence when that still meets [filters.length] min_words (filters/trim.py; column trimmed_chars)")
    echo_ngram: int = Field(8, ge=2, description="word n-gram size for prompt echo")
    max_echo_frac: float = Field(0.2, ge=0, le=1, description="drop when more than this share of the prompt's n-grams are in the text")


def _phrase_regex(p: str) -> re.Pattern:
    left = r"(?<!\w)" if re.match(r"\w", p) else ""
    right = r"(?!\w)" if re.search(r"\w$", p) else ""
    return re.compile(left + re.escape(p) + right)


def is_unfinished(text: str) -> bool:
    end = text.rstrip().rstrip(_CLOSERS)
    return not end.endswith(_ENDINGS) and not end.endswith("…")


class DegenerateAnnotator(Annotator):
    name = "degenerate"
    Config = DegenerateConfig
    columns = {"refusal": pa.bool_(), "unfinished": pa.bool_(), "prompt_echo_frac": pa.float64()}

    def __init__(self, cfg, resources):
        super().__init__(cfg, resources)
        self._phrases = [(p.lower(), _phrase_regex(p.lower())) for p in cfg.refusal_phrases if p.strip()]
        self._plain = [p for p, _ in self._phrases]
        self._openings = re.compile("|".join(f"(?:{p})" for p in cfg.meta_openings), re.IGNORECASE) if cfg.meta_openings else None

    def is_refusal(self, text: str, low: str | None = None) -> bool:
        """`low`: `text.lower()` when the caller has it."""
        if self._openings is not None and self._openings.search(text[:200]):
            return True
        low = text.lower() if low is None else low
        # a plain substring test first (fast, and in C for the usual text holding none); the
        # word-boundary regex only confirms a hit
        if not any(map(low.__contains__, self._plain)):
            return False
        return any(p in low and rx.search(low) for p, rx in self._phrases)

    def echo_frac(self, doc) -> float:
        n = self.cfg.echo_ngram
        if not doc.prompt or len(doc.tokens) < n:
            return 0.0
        p = ngram_hashes(token_hashes(WORD_RE.findall(doc.prompt.lower())), n)
        if len(p) == 0:
            return 0.0
        return float(contains(doc.sorted_ngrams(n), np.unique(p)).mean())

    def annotate(self, doc) -> tuple[dict[str, Any], str | None]:
        text = doc.text
        refusal = self.is_refusal(text, doc.lower)
        unfinished = is_unfinished(text) if text.strip() else False
        echo = self.echo_frac(doc)
        values = {"refusal": refusal, "unfinished": unfinished, "prompt_echo_frac": echo}
        if doc.error:
            return values, f"generation_error:{doc.error}"
        if not text.strip():
            return values, "degenerate:empty"
        if doc.invalid_utf8:
            return values, "degenerate:invalid_utf8"
        if not any(c.isalpha() for c in text[:100000]) and not any(c.isalpha() for c in text):
            return values, "degenerate:no_letters"
        if refusal:
            return values, "degenerate:refusal"
        if echo > self.cfg.max_echo_frac:
            return values, "degenerate:prompt_echo"
        if unfinished and self.cfg.drop_unfinished:
            return values, "degenerate:unfinished"
        return values, None
