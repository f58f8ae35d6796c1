"""Issue 13.4-13.5: the top n-gram rule is exact (ties: the most characters), and `definition =
"datatrove"` reproduces datatrove's GopherRepetitionFilter numbers (datatrove itself is the oracle)."""
from __future__ import annotations

import random
from collections import Counter

import pytest
from datatrove.data import Document
from datatrove.pipeline.filters import gopher_repetition_filter as dt
from datatrove.utils.text import split_into_words

from filters.base import Resources
from filters.repetition import DUP_NGRAMS, TOP_NGRAMS, RepetitionAnnotator, RepetitionConfig, datatrove_values
from filters.text import Doc

WORDS = "the a cat dog hot tea sun ran big red sat on mat and to park was".split()


def _gopher(**kw):
    return RepetitionAnnotator(RepetitionConfig(**kw), Resources())


def _texts(k=60, seed=3):
    rng = random.Random(seed)
    out = []
    for i in range(k):
        n = rng.randint(3, 90)
        words = [rng.choice(WORDS[: rng.randint(4, len(WORDS))]) for _ in range(n)]
        if i % 3 == 0:  # some lines and paragraphs repeated, some punctuation
            s = " ".join(words[: n // 2]) + ".\n" + " ".join(words[: n // 2]) + ".\n\n" + " ".join(words[n // 2:]) + "!"
        else:
            s = " ".join(words) + "."
        out.append(s)
    return out


def _top_reference(tokens: list[str], n: int) -> float:
    """Brute force over word tuples: the tied most frequent n-gram with the most characters."""
    total = sum(map(len, tokens))
    grams = Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
    if not grams or total == 0:
        return 0.0
    top = max(grams.values())
    if top < 2:
        return 0.0
    return max(sum(map(len, g)) for g, c in grams.items() if c == top) * top / total


def test_top_ngram_ties_are_broken_by_characters_not_by_hash():
    rep = _gopher()
    # "cat dog" and "and then" both occur twice (tied); the longer one decides, whichever words fill the slot
    base = "we saw the {a} and then the {a} and then a bird flew over the house"
    values = {}
    for pair in ("cat dog", "hot tea", "big sun", "red mat"):
        values[pair] = rep.annotate(Doc("x", base.format(a=pair)))[0]["top_2gram_char_frac"]
    assert len(set(values.values())) == 1, values  # same lengths, same value, whatever the hash of the words
    tokens = Doc("x", base.format(a="cat dog")).tokens
    assert values["cat dog"] == pytest.approx(_top_reference(tokens, 2))
    assert values["cat dog"] == pytest.approx(len("andthen") * 2 / sum(map(len, tokens)))  # "and then" (7) > "cat dog" (6)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_top_ngram_equals_brute_force_on_texts_full_of_ties(seed):
    rep = _gopher()
    for text in _texts(seed=seed):
        d = Doc("x", text)
        v, _ = rep.annotate(d)
        for n in TOP_NGRAMS:
            assert v[f"top_{n}gram_char_frac"] == pytest.approx(_top_reference(d.tokens, n), abs=1e-12), (text, n)


def _datatrove_oracle(text: str) -> dict[str, float]:
    """The values, computed with datatrove's own functions and tokenizer."""
    total = len(text)
    paras = dt.re.compile(r"\n{2,}").split(text.strip())
    pd, pc = dt.find_duplicates(paras)
    lines = dt.re.compile("\n+").split(text)
    ld, lc = dt.find_duplicates(lines)
    words = split_into_words(text, "en")
    v = {"dup_line_frac": ld / len(lines), "dup_para_frac": pd / len(paras),
         "dup_line_char_frac": lc / total, "dup_para_char_frac": pc / total}
    for n in TOP_NGRAMS:
        grams = dt.get_n_grams(words, n)
        v[f"top_{n}gram_char_frac"] = dt.find_top_duplicate(grams) / total if grams else 0.0
    for n in DUP_NGRAMS:
        v[f"dup_{n}gram_char_frac"] = dt.find_all_duplicate(words, n) / total
    return v


FIXED = [
    "Once upon a time, there was a little girl named Lily. She loved to play with her dog in the park.\n\n"
    "\"Look, Lily!\" said Mom. \"The dog is happy.\" Lily laughed and threw the ball. The dog ran fast and "
    "brought it back. They played all day until the sun went down.",
    "\n".join(["The dog ran to the park and played."] * 6 + ["Then the sun went down over the hill and the town."]),
    "Lily said that " + "the big dog ran and ran " * 8 + "until the night came and everyone went to sleep.",
    "a b c d e x a b c d e",
    "Tom didn't want to go. He isn't sad -- he's tired, and it's 3.5 miles!\n\n\n\nTom didn't want to go.",
    "one",
]


def test_datatrove_definition_reproduces_datatrove():
    rep = _gopher(definition="datatrove")
    flt = dt.GopherRepetitionFilter()
    seen = Counter()
    for i, text in enumerate(FIXED + _texts(40, seed=9)):
        expect = _datatrove_oracle(text)
        v, reason = rep.annotate(Doc("x", text))
        assert v == expect, text  # exactly: same formula, same tokens, same floats
        assert datatrove_values(text) == expect
        keep = flt.filter(Document(text=text, id=str(i)))
        assert (reason is None) == (keep is True), (text, reason, keep)
        if reason is not None:  # the same check fires first
            dt_reason = keep[1].replace("duplicated_", "dup_").replace("_n_grams", "gram_char_frac").replace("_gram", "gram_char_frac")
            assert reason == "repetition:" + dt_reason, (reason, keep)
        seen[(reason or "kept").split("gram")[0]] += 1
    assert seen["kept"] >= 3 and len(seen) >= 4, seen  # kept texts and several different checks exercised


def test_the_two_definitions_differ_as_documented():
    gopher, datatrove = _gopher(), _gopher(definition="datatrove")
    text = "a b c d e x a b c d e"
    g = gopher.annotate(Doc("x", text))[0]["dup_5gram_char_frac"]
    d = datatrove.annotate(Doc("x", text))[0]["dup_5gram_char_frac"]
    assert g == pytest.approx(10 / 11)  # both copies of "a b c d e", over word characters
    assert d == pytest.approx(5 / len(text))  # only the second copy, over every character of the text
    # a top n-gram that occurs once counts for datatrove, not for Gopher's "most frequent ... duplicated"
    assert gopher.annotate(Doc("x", "one two three"))[0]["top_2gram_char_frac"] == 0.0
    assert datatrove.annotate(Doc("x", "one two three"))[0]["top_2gram_char_frac"] == pytest.approx(7 / 13)
