"""The annotator registry: name -> "module:Class". A new annotator is one module plus one line here;
its `Config` becomes the recipe table `[filters.<name>]` automatically (see filters/config.py).

The order is the order in which drop reasons are looked at: the first failing check names the
reason (an empty document is "degenerate:empty", not also "length:too_short").
"""
from __future__ import annotations

import importlib
from functools import lru_cache

ANNOTATORS: dict[str, str] = {
    "degenerate": "filters.degenerate:DegenerateAnnotator",
    "length": "filters.length:LengthAnnotator",
    "instruction_echo": "filters.instruction_echo:InstructionEchoAnnotator",
    "junk": "filters.junk:JunkAnnotator",
    "gopher_quality": "filters.gopher_quality:GopherQualityAnnotator",
    "dictionary": "filters.dictionary:DictionaryAnnotator",
    "repetition": "filters.repetition:RepetitionAnnotator",
    "diversity": "filters.diversity:DiversityAnnotator",
    "readability": "filters.readability:ReadabilityAnnotator",
    "vocabulary": "filters.vocabulary:VocabularyAnnotator",
    "math": "filters.math_verify:MathVerifyAnnotator",
}


@lru_cache(maxsize=None)
def annotator_class(name: str):
    if name not in ANNOTATORS:
        raise KeyError(f"unknown annotator {name!r} (known: {', '.join(ANNOTATORS)})")
    module, cls = ANNOTATORS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def build_annotators(cfg, resources) -> list:
    """The enabled annotators of a FilterConfig, in registry order."""
    out = []
    for name in ANNOTATORS:
        section = getattr(cfg, name)
        if section.enabled:
            out.append(annotator_class(name)(section, resources))
    return out
