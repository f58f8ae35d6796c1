"""Instruction echo: the model talks to the writer instead of telling the story ("End your story here,
wrap up everything nicely", "Write a story about...", "Here is a story", "The story should use the
verb..."). Phrases are matched case-insensitively anywhere in the text; each is unmistakably addressed
to a writer, so a story's own dialogue ("Remember to brush your teeth," said Mom) does not match.

Columns `instruction_echo` (bool) and `instruction_echo_phrase` (the first match); dropped by default.
"""
from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
from pydantic import Field

from filters.base import Annotator, AnnotatorConfig

# Python's `re` tries a \b-led, case-insensitive pattern at every position of the text; a pattern
# whose literal words are absent cannot match, so each default pattern is tried only when one of its
# words (lower case) is in the text: the same first match, several times faster
DEFAULT_GATES = [("end ",), ("story", "tale"), ("story ",), ("wrap",), ("here",), ("simple word",), ("year",),
                 ("the verb", "the noun", "the adjective"), ("the following features",),
                 ("plot twist", "foreshadowing", "moral value", "bad ending"),
                 ("i hope you", "let me know if", "feel free to", "as requested"), ("word count", "word limit", "words limit"),
                 (":",)]
DEFAULT_PATTERNS = [
    r"\bend (?:your|the|this) story\b",
    r"\b(?:write|writing|begin|start|finish) (?:a|an|the|your|this) (?:\w+ ){0,2}(?:story|tale)\b(?! (?:book|time))",
    r"\b(?:the|this|your) story (?:should|must|needs to|will need to)\b",
    r"\bwrap (?:up )?(?:everything|it all|the story|things)(?: up)? nicely\b|\bwrap up everything\b",
    r"\bhere(?:'s| is) (?:a|an|the|your|my) (?:\w+ ){0,3}(?:story|tale|version)\b",
    r"\b(?:only )?uses? (?:very )?simple words\b",
    r"\b(?:3|three)[- ]years?[- ]old (?:child|kid)s? (?:would|can|could)\b",
    r"\bthe (?:verb|noun|adjective) [\"“']",
    r"\bthe following features\b",
    r"\b(?:a|the) plot twist\b|\bforeshadowing\b|\bmoral value\b|\bbad ending\b",
    r"\b(?:i hope you (?:enjoy|like)|let me know if|feel free to|as requested)\b",
    r"\b(?:word count|words? limit)\b",
    r"^\s*(?:note|title|story|the end of the story)\s*:",
]


class InstructionEchoConfig(AnnotatorConfig):
    patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_PATTERNS), description="regexes (case-insensitive, multi-line)")
    drop: bool = Field(True, description="drop a story that echoes an instruction")


class InstructionEchoAnnotator(Annotator):
    name = "instruction_echo"
    Config = InstructionEchoConfig
    columns = {"instruction_echo": pa.bool_(), "instruction_echo_phrase": pa.string()}

    def __init__(self, cfg, resources):
        super().__init__(cfg, resources)
        gates = dict(zip(DEFAULT_PATTERNS, DEFAULT_GATES))
        self._rx = [(re.compile(p, re.IGNORECASE | re.MULTILINE), gates.get(p)) for p in cfg.patterns]

    def first_match(self, text: str, low: str | None = None) -> re.Match | None:
        """The first match in the text of any pattern (at one position, the earlier pattern): what one
        alternation of all the patterns would find. `low`: `text.lower()` when the caller has it."""
        low = text.lower() if low is None else low
        # the gates are exact on ASCII text only: case-insensitive matching also folds a few other
        # letters onto ASCII ones (the long s matches "s", the Kelvin sign "k")
        gated = text.isascii()
        best = None
        for rx, gate in self._rx:
            if gated and gate is not None and not any(map(low.__contains__, gate)):  # any(g in low for g in gate), in C
                continue
            m = rx.search(text)
            if m is not None and (best is None or m.start() < best.start()):
                best = m
        return best

    def annotate(self, doc) -> tuple[dict[str, Any], str | None]:
        m = self.first_match(doc.text, doc.lower)
        v = {"instruction_echo": m is not None, "instruction_echo_phrase": m.group(0) if m else None}
        return v, ("instruction_echo" if m is not None and self.cfg.drop else None)
