"""The cleaning annotators' fast paths give exactly the values of their plain formulations.

Each `_plain_*` function below is the implementation an annotator had before its fast path (kept
here as the oracle); every value is compared with `==` (floats bit for bit, via repr) on the varied
texts of tests/annotator_texts.py: empty, punctuation only, numbers, apostrophes and quotes, other
scripts, emoji, separators, long and repetitive texts, and random edits of human stories."""
from __future__ import annotations

import random
import re
from collections import Counter

import numpy as np
import pytest
from annotator_texts import varied_texts
from conftest import REPO

from filters.base import Resources
from filters.text import WORD_RE, Doc, contains, pack_counts, summed_counts, unpack_counts

VOCAB = REPO / "prompts" / "vocab" / "default.tsv"
TEXTS = varied_texts(k=600, seed=1)


def same(a, b) -> bool:
    """Equal values, floats bit for bit (repr), through dicts, lists and tuples."""
    return repr(a) == repr(b)


def doc(text: str, i: int = 0, prompt: str = "", slots: dict | None = None) -> Doc:
    return Doc(f"d{i}", text, prompt, slots or {}, "stop", None, False)


# ---- tokens and the Doc's shared views ---------------------------------------------------------------
def _plain_findall(text: str) -> list[str]:
    return (WORD_RE.ascii if text.isascii() else WORD_RE.unicode).findall(text)


def test_word_tokens_equal_the_regex():
    rng = random.Random(0)
    alphabet = "ab Z9'’ \n\t.-_x'y''"
    extra = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))) for _ in range(3000)]
    for t in TEXTS + extra:
        for x in (t, t.lower()):
            assert WORD_RE.findall(x) == _plain_findall(x), x


def test_doc_views():
    for i, t in enumerate(TEXTS):
        d = doc(t, i)
        assert d.tokens == _plain_findall(t.lower())
        assert d.lower == t.lower() and d.words == t.split() and d.token_set == set(d.tokens)
        d.release()
        assert d.lower == t.lower() and d.words == t.split() and d.token_set == set(d.tokens)


def test_packed_counts():
    rng = random.Random(2)
    for _ in range(200):
        rows = [[rng.choice([0, 1, 2, 7, 2**31, 2**40]) for _ in range(5)] for _ in range(rng.randint(0, 50))]
        want = tuple(sum(col) for col in zip(*rows)) if rows else (0,) * 5
        assert unpack_counts(sum(pack_counts(*r) for r in rows), 5) == want


def test_summed_counts_equal_plain_sums():
    """Narrow packing (20 bits a count) and its wide fallback: words with a count of 255, 256 or
    far more, and documents of up to 5,000 words (the narrow sum holds below 4,096), through one
    table kept across documents, as the annotators keep theirs."""
    rng = random.Random(3)
    vocab = {f"w{i}": tuple(rng.choice([0, 1, 3, 255, 256, 10_000, 2**40]) if rng.random() < 0.05 else rng.randint(0, 20)
                            for _ in range(4)) for i in range(300)}
    calls = []

    def values(w):
        calls.append(w)
        return vocab[w]

    table: dict = {}
    for n in [0, 1, 5, 200, 4095, 4096, 5000] * 3:
        for small_only in (True, False):
            pool = [w for w, v in vocab.items() if max(v) < 256] if small_only else list(vocab)
            words = [rng.choice(pool) for _ in range(n)]
            want = tuple(sum(vocab[w][i] for w in words) for i in range(4))
            assert summed_counts(words, table, values, 4) == want, (n, small_only)
    from filters.text import _NARROW_BITS, _NARROW_VALUE, _NARROW_WORDS
    assert (_NARROW_VALUE - 1) * (_NARROW_WORDS - 1) < 2**_NARROW_BITS  # no count carries into the next
    assert sorted(calls) == sorted(set(calls))  # each word's values computed once


# ---- readability -------------------------------------------------------------------------------------
_SENTENCE_RE = re.compile(r"\b[^.!?]+[.!?]*", re.UNICODE)
_HAS_WORD_CHAR = re.compile(r"\w")


class _PlainTextstat:
    """filters.readability.TextstatCounts before its per-word cache held every count."""

    def __init__(self):
        from filters.readability import install_offline_cmudict

        install_offline_cmudict()
        from textstat.backend import counts, selections, utils, validations

        self.lang = "en_US"
        root = utils.get_lang_root(self.lang)
        self.fre = (utils.get_lang_cfg(root, "fre_base"), utils.get_lang_cfg(root, "fre_sentence_length"),
                    utils.get_lang_cfg(root, "fre_syll_per_word"))
        self.syllable_threshold = int(utils.get_lang_cfg(self.lang, "syllable_threshold"))
        self._c, self._s, self._v = counts, selections, validations

    def count_sentences(self, text: str) -> int:
        if not text:
            return 0
        ignore = 0
        sentences = _SENTENCE_RE.findall(text)
        for s in sentences:
            toks = s.split()
            if len(toks) <= 2 or sum(1 for t in toks[:3] if _HAS_WORD_CHAR.search(t)) < 3:
                ignore += self._c.count_words(s) <= 2
        return max(1, len(sentences) - ignore)

    def metrics(self, text: str) -> dict[str, float]:
        c, lang = self._c, self.lang
        words = self._s.list_words(text)
        n_words = len(words)
        n_sent = self.count_sentences(text)
        n_syl = sum(c.count_syllables(w.lower(), lang) for w in words)
        n_hard = sum(int(self._v.is_difficult_word(w, self.syllable_threshold, lang)) for w in words)
        wps = n_words / n_sent if n_sent else 0.0
        spw = n_syl / n_words if n_words else 0.0
        base, a, b = self.fre
        out = {}
        out["flesch_reading_ease"] = 0.0 if wps == 0 or spw == 0 else base - a * wps - b * spw
        out["flesch_kincaid_grade"] = 0.0 if wps == 0 or spw == 0 else (0.39 * wps) + (11.8 * spw) - 15.59
        out["gunning_fog"] = 0.0 if n_words == 0 else 0.4 * (wps + 100 * n_hard / n_words)
        letters = (c.count_letters(text) / n_words if n_words else 0.0) * 100
        sentences = (n_sent / n_words if n_words else 0.0) * 100
        out["coleman_liau_index"] = 0.0 if letters == 0 or sentences == 0 else (0.058 * letters) - (0.296 * sentences) - 15.8
        n_all = c.count_words(text, rm_punctuation=False)
        cpw = len("".join(text.split())) / n_all if n_all else 0.0
        out["automated_readability_index"] = 0.0 if cpw == 0 or wps == 0 else (4.71 * cpw) + (0.5 * wps) - 21.43
        return out


def test_readability_equals_the_plain_counts():
    from filters.readability import (
        ReadabilityAnnotator,
        ReadabilityConfig,
        TextstatCounts,
    )

    plain, fast = _PlainTextstat(), TextstatCounts()
    short = ReadabilityAnnotator(ReadabilityConfig(max_chars=40), Resources())
    rng = random.Random(3)
    sentences = ["".join(rng.choice("ab 1,.!?'-\n\t") for _ in range(rng.randint(0, 25))) for _ in range(3000)]
    for s in sentences:
        assert fast.count_sentences(s) == plain.count_sentences(s), s
    for i, t in enumerate(TEXTS):
        assert fast.count_sentences(t) == plain.count_sentences(t), t
        want = plain.metrics(t)
        assert same(fast.metrics(t), want), t
        assert same(fast.metrics(t, t.split()), want), t
        d = doc(t, i)
        if d.tokens:  # the annotator passes the Doc's words only when the text is not cut at max_chars
            v, _ = short.annotate(d)
            assert v["flesch_reading_ease"] is None or same(v, plain.metrics(t[:40])), t


def test_readability_still_equals_textstat():
    """On ASCII text. (Outside ASCII the per-word syllable count differed from textstat's already
    before the fast path: "İ".lower() adds a combining dot, which textstat keeps and we strip.)"""
    import textstat

    from filters.readability import METRICS, TextstatCounts
    fast = TextstatCounts()
    for t in TEXTS[::5]:
        if t.strip() and t.isascii():
            got = fast.metrics(t)
            assert same([got[m] for m in METRICS], [getattr(textstat, m)(t) for m in METRICS]), t


# ---- Gopher quality ----------------------------------------------------------------------------------
def _plain_gopher(text: str, stop_words) -> dict:
    from filters.gopher_quality import _ALPHA, _PUNCT, BULLETS, ELLIPSES

    words = text.split()
    n = len(words)
    stripped = [w.strip(_PUNCT) for w in words]
    stripped = [w for w in stripped if w]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    symbols = text.count("#") + text.count("...") + text.count("…")
    low = [w.lower().strip(_PUNCT) for w in words]
    return {
        "gopher_word_count": n,
        "mean_word_length": sum(map(len, stripped)) / len(stripped) if stripped else 0.0,
        "symbol_word_ratio": symbols / n if n else 0.0,
        "bullet_lines_frac": sum(ln.startswith(BULLETS) for ln in lines) / len(lines) if lines else 0.0,
        "ellipsis_lines_frac": sum(ln.endswith(ELLIPSES) for ln in lines) / len(lines) if lines else 0.0,
        "alpha_words_frac": (n - sum(1 for w in words if not _ALPHA.search(w))) / n if n else 0.0,
        "stop_word_count": sum(w in stop_words for w in low),
    }


@pytest.mark.parametrize("language", ["en", "hi"])
def test_gopher_equals_the_plain_word_loops(language):
    from filters.gopher_quality import (
        GopherQualityAnnotator,
        GopherQualityConfig,
        gopher_metrics,
    )

    a = GopherQualityAnnotator(GopherQualityConfig(language=language), Resources())
    for i, t in enumerate(TEXTS):
        want = _plain_gopher(t, a.stop_words)
        assert same(gopher_metrics(t, a.stop_words), want), t
        assert same(a.annotate(doc(t, i))[0], want), t


# ---- junk --------------------------------------------------------------------------------------------
def test_junk_ascii_counts_equal_the_regexes():
    from filters.junk import _ASCII_SYMBOL, _SPACE, junk_metrics

    rng = random.Random(4)
    alphabet = "".join(chr(i) for i in range(128))
    extra = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120))) for _ in range(2000)]
    for t in TEXTS + extra:
        if t.isascii():
            n_chars = len(t) - len(_SPACE.findall(t))
            symbols = len(_ASCII_SYMBOL.findall(t))
            assert same(junk_metrics(t)["symbol_frac"], symbols / n_chars if n_chars else 0.0), t


# ---- dictionary --------------------------------------------------------------------------------------
def test_dictionary_equals_the_plain_loop():
    from filters.dictionary import _DIGIT, DictionaryAnnotator, DictionaryConfig

    a = DictionaryAnnotator(DictionaryConfig(), Resources())
    for i, t in enumerate(TEXTS):
        d = doc(t, i)
        words = [w for w in d.tokens if not _DIGIT.search(w)]
        want = sum(a.is_word(w) for w in words) / len(words) if words else None
        assert same(a.annotate(d)[0]["dict_word_frac"], want), t


# ---- vocabulary --------------------------------------------------------------------------------------
class _PlainVocabulary:
    """filters.vocabulary.VocabularyAnnotator.annotate before its fast path (own caches, shared spaCy)."""

    def __init__(self, fast):
        from filters.vocabulary import Lemmatizer

        self.cfg, self.vocab, self.allowed, self._judged = fast.cfg, fast.vocab, fast.allowed, fast._judged
        self.lemmatizer = Lemmatizer(None, fast.lemmatizer.nlp)
        self._slot_words = fast._slot_words
        self._known = {}

    def lemmas(self, words):
        lem = self.lemmatizer
        new = sorted({w for w in words if w not in lem.cache})
        if lem.nlp is None:
            lem.cache.update((w, w) for w in new)
            lem.pos.update((w, "X") for w in new)
            return lem.cache
        for w, d in zip(new, lem.nlp.pipe(new, batch_size=256)):
            lem.cache[w] = d[0].lemma_.lower() if len(d) else w
            lem.pos[w] = d[0].pos_ if len(d) else "X"
        return lem.cache

    def _classify(self, forms):
        known = self._known
        new = [w for w in set(forms) if w not in known]
        if new:
            lemmas = self.lemmas([w for w in new if not any(c.isdigit() for c in w)])
            pos = self.lemmatizer.pos
            for w in new:
                if any(c.isdigit() for c in w):
                    known[w] = 0
                elif w in self.allowed or lemmas[w] in self.allowed or pos[w] not in self._judged:
                    known[w] = 1
                else:
                    known[w] = 2
        return known

    def annotate(self, doc):
        known = self._classify(doc.tokens)
        slot_words = self._slot_words(doc.slots) if self.cfg.allow_slot_words else set()
        required = [str(doc.slots[s]).lower() for s in self.cfg.required_slots if doc.slots.get(s)]
        if self.vocab is None:
            oov_rate, oov = None, []
        else:
            n_words, oov_tokens = 0, []
            for w in doc.tokens:
                k = known[w]
                if k:
                    n_words += 1
                    if k == 2 and w not in slot_words:
                        oov_tokens.append(w)
            oov_rate = len(oov_tokens) / n_words if n_words else None
            oov = sorted(set(oov_tokens))[: self.cfg.max_listed]
        present = None
        if required:
            forms = set(doc.tokens)
            lemmas = self.lemmas(forms)
            have = forms | {lemmas[w] for w in forms}
            present = all(r in have or self.lemmas([r])[r] in have for r in required)
        return {"oov_rate": oov_rate, "oov_words": oov, "required_words_present": present}


SLOTS = [{}, {"verb": "run", "noun": "dog", "adjective": "happy", "name": "Lily", "features": ["Dialogue"]},
         {"verb": "jumped", "noun": "cats", "adjective": "big"}, {"verb": "zorble", "noun": "ball", "name": "Ånna"},
         {"name": "Tom", "setting": "the park", "features": ["BadEnding", "Twist"]}, {"noun": "tree", "extra": 3},
         {"verb": "flibber", "noun": "wug", "adjective": "blorky", "name": "wug"}]


@pytest.mark.parametrize("cfg", [{}, {"max_listed": 2}, {"allow_slot_words": False}, {"language": "hi"}])
def test_vocabulary_equals_the_plain_loop(cfg):
    from filters.vocabulary import VocabularyAnnotator, VocabularyConfig

    fast = VocabularyAnnotator(VocabularyConfig(**cfg), Resources(VOCAB))
    plain = _PlainVocabulary(fast)
    rng = random.Random(5)
    for i, t in enumerate(TEXTS[:400]):
        slots = rng.choice(SLOTS)
        v, _ = fast.annotate(doc(t, i, slots=slots))
        assert same(v, plain.annotate(doc(t, i, slots=slots))), (t, slots)


# ---- repetition --------------------------------------------------------------------------------------
def _plain_top_ngram_char_frac(ngrams, sorted_ngrams, word_chars, n, total):
    if len(ngrams) < 2 or total == 0:
        return 0.0
    s = sorted_ngrams
    starts = np.concatenate(([0], np.flatnonzero(s[1:] != s[:-1]) + 1))
    runs = np.diff(np.append(starts, len(s)))
    top = int(runs.max())
    if top < 2:
        return 0.0
    tied = np.repeat(runs == top, runs)
    at = contains(s[tied], ngrams)
    cs = np.concatenate(([0], np.cumsum(word_chars)))
    p = np.flatnonzero(at)
    return float(int((cs[p + n] - cs[p]).max()) * top / total)


def _repetitive_texts(k=400, seed=6):
    rng = random.Random(seed)
    words = "the a cat dog hot tea sun ran big red sat on mat and to park was".split()
    out = []
    for _ in range(k):
        vocab = words[: rng.randint(2, len(words))]
        out.append(" ".join(rng.choice(vocab) for _ in range(rng.randint(0, 120))))
    return out


def test_top_ngram_equals_the_plain_run_lengths():
    from filters.repetition import TOP_NGRAMS, top_ngram_char_frac

    for i, t in enumerate(TEXTS + _repetitive_texts()):
        d = doc(t, i)
        total = int(d.word_chars.sum())
        for n in list(TOP_NGRAMS) + [1, 5]:
            args = (d.ngrams(n), d.sorted_ngrams(n), d.word_chars, n, total)
            assert same(top_ngram_char_frac(*args), _plain_top_ngram_char_frac(*args)), (t, n)


def test_repetition_values_and_reasons_unchanged():
    """The whole annotator against the plain per-n computation (paragraph split gated on a newline)."""
    from filters.repetition import (
        DUP_NGRAMS,
        TOP_NGRAMS,
        RepetitionAnnotator,
        RepetitionConfig,
        dup_ngram_char_frac,
        duplicate_fracs,
    )

    a = RepetitionAnnotator(RepetitionConfig(), Resources())
    para = re.compile(r"\n\s*\n")
    for i, t in enumerate(TEXTS + _repetitive_texts()):
        d = doc(t, i)
        v, _ = a.annotate(d)
        want = {}
        lines = [s for s in (x.strip() for x in t.split("\n")) if s]
        paras = [s for s in (x.strip() for x in para.split(t)) if s]
        want["dup_line_frac"], want["dup_line_char_frac"] = duplicate_fracs(lines, len(t))
        want["dup_para_frac"], want["dup_para_char_frac"] = duplicate_fracs(paras, len(t))
        total = int(d.word_chars.sum())
        for n in TOP_NGRAMS:
            want[f"top_{n}gram_char_frac"] = _plain_top_ngram_char_frac(d.ngrams(n), d.sorted_ngrams(n), d.word_chars, n, total)
        for n in DUP_NGRAMS:
            want[f"dup_{n}gram_char_frac"] = dup_ngram_char_frac(d.ngrams(n), d.sorted_ngrams(n), d.word_chars, n, total)
        assert same({k: v[k] for k in sorted(want)}, {k: want[k] for k in sorted(want)}), t


def test_counter_of_tied_ngrams_is_order_free():
    """Ties among the most frequent n-grams: the most characters wins, whatever the hash order."""
    from filters.repetition import top_ngram_char_frac

    d = doc("aa b aa b ccc dd ccc dd")
    total = int(d.word_chars.sum())
    assert top_ngram_char_frac(d.ngrams(2), d.sorted_ngrams(2), d.word_chars, 2, total) == 5 * 2 / total
    assert Counter(d.tokens)["aa"] == 2


# ---- n-grams, shingles, decontamination --------------------------------------------------------------
def test_doc_ngrams_equal_ngram_hashes_in_any_order():
    from filters.text import ngram_hashes

    rng = random.Random(7)
    for i, t in enumerate(TEXTS[:300]):
        d = doc(t, i)
        order = list(range(1, 15))
        rng.shuffle(order)
        for n in order:
            assert np.array_equal(d.ngrams(n), ngram_hashes(d.hashes, n)) and d.ngrams(n).dtype == np.uint64, (t, n)
        d.release()
        assert np.array_equal(d.ngrams(13), ngram_hashes(d.hashes, 13))


def test_signatures_of_ngrams_equal_signatures_of_shingle_hashes():
    from filters.minhash import MinHasher, shingle_hashes, shingle_ngrams

    docs = [doc(t, i) for i, t in enumerate(TEXTS)]
    h = MinHasher(128, 1, chunk=700)
    for n in (1, 3, 5):
        want = h.signatures([shingle_hashes(d, n) for d in docs])
        assert np.array_equal(h.signatures_of_ngrams([shingle_ngrams(d, n) for d in docs]), want)
    assert h.signatures_of_ngrams([]).shape == h.signatures([]).shape == (0, 128)


def _plain_match(index, doc_ngrams):
    if len(index.hashes) == 0 or len(doc_ngrams) == 0:
        return None
    if frozenset(index.hashes.tolist()).isdisjoint(doc_ngrams.tolist()):
        return None
    pos = np.searchsorted(index.hashes, doc_ngrams)
    pos[pos == len(index.hashes)] = 0
    hit = index.hashes[pos] == doc_ngrams
    if not hit.any():
        return None
    return index.items[int(index.owners[pos[hit]].min())]


def test_decontam_prefilter_finds_what_the_plain_search_finds(tmp_path):
    import json

    from filters.config import EvalSet
    from filters.decontam import EvalIndex

    items = [t for t in TEXTS if len(t.split()) > 12][:60]
    path = tmp_path / "eval.jsonl"
    path.write_text("".join(json.dumps({"q": t}) + "\n" for t in items + items[:5]))  # repeated items too
    for ngram in (3, 8, 13):
        index = EvalIndex.load([EvalSet(name="e", path=str(path), field="q")], ngram=ngram)
        rng = random.Random(ngram)
        docs = TEXTS + [rng.choice(items) for _ in range(20)] + [" ".join(rng.choice(items).split()[3:20]) for _ in range(20)]
        hits = 0
        for i, t in enumerate(docs):
            g = doc(t, i).ngrams(ngram)
            want = _plain_match(index, g)
            hits += want is not None
            assert index.match_ngrams(g) == want, t
        assert hits > 40
    empty = EvalIndex(13)
    assert empty.match_ngrams(doc(TEXTS[-1]).ngrams(13)) is None


def _plain_slot_words(slots):
    out = set()
    for value in slots.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                out.update(WORD_RE.findall(item.lower()))
    return out


def test_slot_words_equal_the_per_value_tokens():
    from filters.vocabulary import VocabularyAnnotator

    rng = random.Random(8)
    pool = [t[:40] for t in TEXTS] + [3, None, 2.5, True]
    for _ in range(2000):
        slots = {f"k{j}": (rng.choice(pool) if rng.random() < 0.7 else [rng.choice(pool) for _ in range(rng.randint(0, 3))])
                 for j in range(rng.randint(0, 5))}
        assert VocabularyAnnotator._slot_words(slots) == _plain_slot_words(slots), slots


# ---- degenerate, instruction echo, junk: the gates -----------------------------------------------------
REFUSALS = ["As an AI, I can't.", "I'm sorry, but no.", "language models", "Write a short story now.",
            "the story shouldn't", "<|im_end|>", "Sure! Here", "  okay, fine", "i can't write", "xas an ai"]


def test_refusal_gate_finds_what_the_phrase_loop_finds():
    from filters.degenerate import DegenerateAnnotator, DegenerateConfig

    a = DegenerateAnnotator(DegenerateConfig(), Resources())
    for t in TEXTS + REFUSALS + [r + " " + t for r in REFUSALS for t in TEXTS[:20]]:
        want = bool(a._openings.search(t[:200])) or any(p in t.lower() and rx.search(t.lower()) for p, rx in a._phrases)
        assert a.is_refusal(t) == a.is_refusal(t, t.lower()) == want, t


def test_instruction_echo_equals_one_alternation():
    from filters.instruction_echo import (
        DEFAULT_PATTERNS,
        InstructionEchoAnnotator,
        InstructionEchoConfig,
    )

    one = re.compile("|".join(f"(?:{p})" for p in DEFAULT_PATTERNS), re.IGNORECASE | re.MULTILINE)
    echo = InstructionEchoAnnotator(InstructionEchoConfig(), Resources())
    extra = ["End your story here, wrap up everything nicely.", "Here is a short story: a cat.", "Word count: 120",
             "THE FOLLOWING FEATURES: Foreshadowing", "I hope you enjoy it!", "Title: x", "note: y",
             # letters that case-insensitive matching folds onto ASCII ones: the long s, the Kelvin sign
             "Uſe very ſimple words.", "Write a ſtory about a cat.", "\u212aeep it short."]
    for t in TEXTS + extra + [t + " " + e for e in extra for t in TEXTS[:30]]:
        want, got = one.search(t), echo.first_match(t, t.lower())
        assert (want and (want.group(0), want.start())) == (got and (got.group(0), got.start())), t


def _plain_junk(text: str) -> dict:
    from filters.junk import (
        _ASCII_SYMBOL,
        _DIGIT,
        _LOWER_UPPER,
        _SPACE,
        _TLDS,
        DATE_RE,
        HASHTAG_RE,
        ODD_CASE_RE,
        URL_RE,
        is_emoji,
        is_symbol,
    )

    def count(rx, possible):
        return len(rx.findall(text)) if possible else 0
    if text.isascii():
        n_chars = len(text) - len(_SPACE.findall(text))
        symbols, emoji = len(_ASCII_SYMBOL.findall(text)), 0
    else:
        chars = [c for c in text if not c.isspace()]
        n_chars = len(chars)
        symbols = sum(1 for c in chars if is_symbol(c))
        emoji = sum(1 for c in chars if is_emoji(c))
    low = text.lower()
    return {
        "emoji_count": emoji,
        "url_count": count(URL_RE, "http" in low or "www." in low or any(t in low for t in _TLDS)),
        "hashtag_count": count(HASHTAG_RE, "#" in text or "@" in text),
        "date_count": count(DATE_RE, _DIGIT.search(text) is not None),
        "symbol_frac": symbols / n_chars if n_chars else 0.0,
        "odd_case_count": count(ODD_CASE_RE, _LOWER_UPPER.search(text) is not None),
    }


def test_junk_equals_the_plain_counts():
    from filters.junk import junk_metrics

    rng = random.Random(9)
    pieces = ["a", "Z", "b", "Q", "1", "9", ".", " ", "\n", ".com", ".Io", "www.", "http", "#", "@", "/", "-", "é", "Ω", "٣"]
    extra = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 30))) for _ in range(3000)]
    for t in TEXTS + extra + ["see www.x.com and a.io", "http://a.b", "#x @y", "On 2021-03-04", "sloWLY", "a.Com"]:
        want = _plain_junk(t)
        assert same(junk_metrics(t), want) and same(junk_metrics(t, t.lower()), want), t
