"""What a rewrite is judged by, for one text at a time: its OOV rate and OOV words (the vocabulary
annotator), its grade (Flesch-Kincaid, the readability annotator; null where no formula exists for
the language) and its content lemmas, and how two texts compare.

`content_overlap(source, output)` is the share of the source's distinct content lemmas (nouns, proper
nouns, verbs, adjectives, numbers by spaCy's tag; for a language without a tagger, every word form
that is not a stop word) that the output still contains. It needs no embedding model and can only
go down when facts are dropped; it also goes down when a hard word is replaced by a simpler synonym,
so a good rewrite sits well below 1 (see the README, "Leaner text", for the bound we use).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from corpora.languages import stop_words
from filters.base import Resources
from filters.readability import ReadabilityAnnotator, ReadabilityConfig
from filters.text import Doc
from filters.vocabulary import VocabularyAnnotator, VocabularyConfig

CONTENT_POS = frozenset({"NOUN", "PROPN", "VERB", "ADJ", "NUM", "X"})


@dataclass(frozen=True)
class Measure:
    words: int
    oov_rate: float | None
    oov_words: tuple[str, ...]
    grade: float | None
    content: frozenset[str]


class TextMeasurer:
    """Built once per process (spaCy and textstat load here); `measure(text)` is cheap after that."""

    def __init__(self, vocab_path: str | Path | None, language: str = "en"):
        self.language = language
        self.vocab = VocabularyAnnotator(VocabularyConfig(max_oov_rate=None, max_listed=1000, language=language),
                                         Resources(Path(vocab_path) if vocab_path else None))
        self.readability = ReadabilityAnnotator(ReadabilityConfig(language=language), Resources())
        self.stop = stop_words(language)

    def measure(self, text: str) -> Measure:
        doc = Doc("", text)
        v, _ = self.vocab.annotate(doc)
        r, _ = self.readability.annotate(doc)
        lem = self.vocab.lemmatizer
        forms = [w for w in set(doc.tokens) if w not in self.stop and not any(c.isdigit() for c in w)]
        lemmas = lem.lemmas(forms)
        content = frozenset(lemmas[w] for w in forms if lem.pos.get(w, "X") in CONTENT_POS and lemmas[w] not in self.stop)
        return Measure(len(doc.tokens), v["oov_rate"], tuple(v["oov_words"]), r["flesch_kincaid_grade"], content)


def content_overlap(source: Measure, output: Measure) -> float | None:
    if not source.content:
        return None
    return len(source.content & output.content) / len(source.content)


def length_ratio(source: Measure, output: Measure) -> float | None:
    return output.words / source.words if source.words else None


class TransformJudge:
    """The transform stage's measurements: the source in its language, the output in the target
    language against the target vocabulary. Content overlap only when both are in one language."""

    def __init__(self, vocab_path: str | Path | None, language: str = "en", source_language: str = "en"):
        self.output = TextMeasurer(vocab_path, language)
        self.source = self.output if source_language == language else TextMeasurer(None, source_language)
        self.same_language = source_language == language

    def measure_source(self, text: str) -> Measure:
        return self.source.measure(text)

    def measure_output(self, text: str) -> Measure:
        return self.output.measure(text)

    def compare(self, source: Measure, output: Measure) -> tuple[float | None, float | None]:
        return (content_overlap(source, output) if self.same_language else None), length_ratio(source, output)
