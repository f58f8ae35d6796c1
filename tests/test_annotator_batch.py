"""The n-gram annotators' whole-shard path (`annotate_batch`, filters/ngram_batch.py) gives exactly
what their per-document `annotate` (the reference) gives: every column (floats bit for bit, via
repr; None where None) and every drop reason, on varied texts, synthetic stories, heavy repetition,
edge cases and more documents than one batch chunk holds; and the cleaning stage's table for a
shard is the same with and without the batch path."""
from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest
from annotator_texts import varied_texts
from conftest import REPO
from test_filters_stage import build_corpus, filter_config

from corpora import Corpus
from filters import ngram_batch
from filters.annotate import annotate_table, worker_state
from filters.base import Resources
from filters.diversity import DiversityAnnotator, DiversityConfig
from filters.repetition import RepetitionAnnotator, RepetitionConfig
from filters.text import Doc

VOCAB = REPO / "prompts" / "vocab" / "default.tsv"
WORDS = [line.split("\t")[0] for line in VOCAB.read_text().splitlines()[1:600]]
STOP = ["the", "a", "and", "was", "she", "he", "they", "to", "with", "her", "his", "then", "said", "in", "on", "it"]


def bench_story(rng: random.Random) -> str:
    """A story as bench/annotate.py makes them: ~200 words, stop words and vocabulary words."""
    toks = [rng.choice(["Lily", "Tom", "Mia"]), "wanted", "to", rng.choice(WORDS), "with", "a", rng.choice(WORDS) + "."]
    sent = 0
    while len(toks) < rng.randint(20, 220):
        toks.append(rng.choice(STOP) if rng.random() < 0.45 else rng.choice(WORDS))
        sent += 1
        if sent >= rng.randint(6, 14):
            toks[-1] += rng.choice([".", "!", "?", ".\n", ".\n\n"])
            sent = 0
    return " ".join(toks)


def repetitive(rng: random.Random) -> str:
    """Heavy repetition: a phrase or line repeated, loops of a few words, repeated paragraphs."""
    phrase = " ".join(rng.choice(WORDS[:40] + STOP) for _ in range(rng.randint(1, 12)))
    kind = rng.randrange(5)
    if kind == 0:
        return (phrase + " ") * rng.randint(1, 40)
    if kind == 1:
        return "\n".join([phrase] * rng.randint(2, 10) + [bench_story(rng)])
    if kind == 2:
        return "\n\n".join(rng.choice([phrase, bench_story(rng)]) for _ in range(rng.randint(2, 6)))
    if kind == 3:  # two loops of different length
        return " ".join([phrase] * rng.randint(2, 8) + [bench_story(rng)] + [phrase.upper()] * rng.randint(2, 8))
    return " ".join(rng.choice(WORDS[:rng.randint(1, 6)]) for _ in range(rng.randint(1, 300)))


EDGE = ["", " ", "\n\n", "a", "word", "one two", "one two three", "a a", "a b a", "a b a b", "x " * 5, "x " * 11,
        "Привет мир привет мир привет мир", "हिंदी में हिंदी में हिंदी में", "日本語 日本語 日本語", "😀 😀 😀 dog dog dog dog",
        "don't don't don't stop", "a" * 5000 + " " + "a" * 5000, ("b" * 3000 + " ") * 6]


def texts(n_stories: int, n_repetitive: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = varied_texts(k=300, seed=seed) + EDGE
    out += [bench_story(rng) for _ in range(n_stories)] + [repetitive(rng) for _ in range(n_repetitive)]
    rng.shuffle(out)
    return out


def docs_of(ts: list[str]) -> list[Doc]:
    return [Doc(f"d{i}", t, "", {}, "stop", None, False) for i, t in enumerate(ts)]


def same(a, b) -> bool:
    """Equal values, floats bit for bit (repr), through dicts, lists and tuples."""
    return repr(a) == repr(b)


def check_equal(annotator, ts: list[str], shared: bool = False) -> list:
    """annotate_batch (in new Docs) == annotate per document; returns the per-document results."""
    want = [annotator.annotate(d) for d in docs_of(ts)]
    docs = docs_of(ts)
    if shared:
        with ngram_batch.shared():
            got = annotator.annotate_batch(docs)
    else:
        got = annotator.annotate_batch(docs)
    assert len(got) == len(want)
    for t, g, w in zip(ts, got, want):
        assert same(g, w), (t[:200], g, w)
        assert g == w
    return want


REPETITION_CONFIGS = [
    {},
    {"max_dup_line_frac": 0.05, "max_dup_para_char_frac": 0.5, "max_top_ngram_char_frac": {2: 0.05, 3: 0.04, 4: 0.3, 7: 0.1},
     "max_dup_ngram_char_frac": {5: 0.6, 8: 0.02, 12: 0.0}},
    {"max_dup_line_frac": 1.0, "max_dup_para_frac": 1.0, "max_dup_line_char_frac": 1.0, "max_dup_para_char_frac": 1.0,
     "max_top_ngram_char_frac": {4: 0.5}, "max_dup_ngram_char_frac": {10: 0.0, 6: 0.3}},
]
DIVERSITY_CONFIGS = [
    {},
    {"min_distinct_1": 0.5, "min_distinct_2": 0.8, "min_distinct_3": 0.9, "max_compression_ratio": 2.5},
    {"min_distinct_3": 0.97, "max_compression_ratio": 1.5},
]


@pytest.mark.parametrize("cfg", REPETITION_CONFIGS)
def test_repetition_batch_equals_per_document(cfg):
    ts = texts(300, 300, seed=len(str(cfg)))
    want = check_equal(RepetitionAnnotator(RepetitionConfig(**cfg), Resources()), ts)
    # the texts exercise the columns: repeated n-grams of every size, and several drop reasons
    for key in ("top_2gram_char_frac", "top_4gram_char_frac", "dup_5gram_char_frac", "dup_10gram_char_frac"):
        assert sum(v[key] > 0 for v, _ in want) > 50, key
    assert len({r for _, r in want}) >= 4


@pytest.mark.parametrize("cfg", DIVERSITY_CONFIGS)
def test_diversity_batch_equals_per_document(cfg):
    ts = texts(300, 300, seed=7 + len(str(cfg)))
    want = check_equal(DiversityAnnotator(DiversityConfig(**cfg), Resources()), ts)
    assert any(v["distinct_3"] is None for v, _ in want) and any(v["distinct_3"] == 1.0 for v, _ in want)
    assert any(v["distinct_1"] is not None and v["distinct_1"] < 0.5 for v, _ in want)
    if cfg:
        assert len({r for _, r in want}) >= 3


def test_more_documents_than_one_chunk_and_shared_batches():
    """Over 4,095 documents: a full chunk of 4,095 and the rest; repetition then diversity inside
    `shared()` (as the cleaning stage runs them: diversity reuses the distinct-n counts) equal per
    document."""
    rng = random.Random(3)
    ts = [" ".join(bench_story(rng).split()[:80]) if i % 3 else repetitive(rng)[:400] for i in range(ngram_batch.MAX_DOCS + 300)] + EDGE
    assert [len(c) for _, c in ngram_batch.chunks(docs_of(ts))] == [ngram_batch.MAX_DOCS, len(ts) - ngram_batch.MAX_DOCS]
    rep = RepetitionAnnotator(RepetitionConfig(), Resources())
    div = DiversityAnnotator(DiversityConfig(min_distinct_2=0.9), Resources())
    want = [(rep.annotate(d), div.annotate(d)) for d in docs_of(ts)]
    docs = docs_of(ts)
    with ngram_batch.shared():
        got_rep = rep.annotate_batch(docs)
        # repetition counted the distinct 1- to 10-grams of each chunk; diversity takes them, sorting nothing
        assert [sorted(d) for _, d in ngram_batch._SHARED.values()] == [list(range(1, 11))] * 2
        sorts = []
        with pytest.MonkeyPatch.context() as m:
            m.setattr(ngram_batch.Runs, "__init__", lambda self, keys: sorts.append(keys))
            got = list(zip(got_rep, div.annotate_batch(docs)))
        assert sorts == []
    assert ngram_batch._SHARED is None
    assert same(got, want)


def test_tiny_batches():
    """Batches with fewer words than the n-gram sizes (no n-gram at all for the larger n)."""
    rep = RepetitionAnnotator(RepetitionConfig(), Resources())
    div = DiversityAnnotator(DiversityConfig(min_distinct_1=0.9), Resources())
    for group in ([], [""], ["", ""], ["a"], ["a b", "c"], ["a a a a"], ["x y x y x y", ""], ["a b c a b c a b c a b c"],
                  ["one two three four five six seven eight nine one two three four five six seven eight nine ten"]):
        for shared in (False, True):
            check_equal(rep, group, shared)
            check_equal(div, group, shared)


def test_datatrove_definition_goes_per_document():
    a = RepetitionAnnotator(RepetitionConfig(definition="datatrove"), Resources())
    check_equal(a, texts(10, 10, seed=5)[:60])


class _Tokens:
    def __init__(self, k: int):
        self.hashes = np.zeros(k, dtype=np.uint64)


def test_chunks_cover_every_document_in_order_and_bound_docs_and_tokens():
    rng = random.Random(4)
    for n, size, tokens in ((0, 4095, 1000), (1, 4095, 1000), (4095, 4095, 10**9), (4096, 4095, 10**9), (9000, 4095, 10**9),
                            (300, 7, 50), (300, 1000, 40), (50, 3, 1)):
        docs = [_Tokens(rng.choice([0, 1, 5, 30, 100])) for _ in range(n)]
        parts = ngram_batch.chunks(docs, size, tokens)
        assert [x for _, c in parts for x in c] == docs
        assert [i for i, _ in parts] == [sum(len(c) for _, c in parts[:k]) for k in range(len(parts))]
        for _, c in parts:
            assert 1 <= len(c) <= size
            assert len(c) == 1 or sum(len(d.hashes) for d in c) <= tokens
    assert len(ngram_batch.chunks([_Tokens(1)] * 9000)) == 3


def test_ngram_hashes_of_the_concatenation_are_each_documents():
    docs = docs_of(texts(50, 50, seed=9)[:300])
    b = ngram_batch.NgramBatch(docs)
    for n in (1, 2, 3, 5, 4, 8, 13):
        h = b.ngram_hashes(n)
        for i, d in enumerate(docs):
            pos = b.offsets[i] + np.arange(max(len(d.hashes) - n + 1, 0))
            assert np.array_equal(h[pos], d.ngrams(n))


def test_word_chars_of_the_concatenation():
    ts = texts(50, 50, seed=11)[:400]
    ascii_only = [t for t in ts if t.isascii()]
    assert len(ascii_only) < len(ts)
    for group in (ts, ascii_only, ["", "a", ""], ["x'y z''a 'b' c'"] * 3):
        docs = docs_of(group)
        b = ngram_batch.NgramBatch(docs)
        assert np.array_equal(b.word_chars, np.concatenate([d.word_chars for d in docs]))
        assert b.total_chars.tolist() == [int(d.word_chars.sum()) for d in docs]


def test_contains_sorted():
    rng = np.random.default_rng(0)
    for size in (1, 5, 300, 20000):
        values = np.unique(rng.integers(0, 2**63, size, dtype=np.uint64))
        x = np.concatenate([rng.choice(values, 500), rng.integers(0, 2**63, 5000, dtype=np.uint64), values[-1:] + np.uint64(1)])
        assert np.array_equal(ngram_batch.contains_sorted(values, x), np.isin(x, values))
    assert ngram_batch.contains_sorted(np.empty(0, dtype=np.uint64), x).sum() == 0


def test_annotate_table_is_the_same_with_and_without_the_batch_path(tmp_path, monkeypatch):
    """A real shard (stories with hostile texts planted: empty, 1 MB, CJK, a long line, a refusal,
    an error, a GSM8K question) plus a shard of bench stories and repetitive texts."""
    root = tmp_path / "corpus"
    build_corpus(root, shards=3, per_shard=80)
    c = Corpus(root)
    rng = random.Random(1)
    extra = [bench_story(rng) if i % 4 else repetitive(rng) for i in range(400)] + EDGE
    first = c.read_shard("raw", "part-00000")
    extra = [t.rstrip(" .!?\n") + "." if t.strip() else t for t in extra]  # finished stories
    recs = [dict(first.slice(0, 1).to_pylist()[0], id=f"x{i}", text=t, prompt=f"Story {i}.") for i, t in enumerate(extra)]
    c.write_shard("raw", "part-00099", pa.Table.from_pylist(recs, schema=first.schema))
    cfg = filter_config(repetition={"max_top_ngram_char_frac": {2: 0.1}}, diversity={"min_distinct_1": 0.8},
                        gopher_quality={"enabled": False})
    state = worker_state(cfg.model_dump_json(), str(VOCAB))
    assert sum(isinstance(a, (RepetitionAnnotator, DiversityAnnotator)) for a in state["annotators"]) == 2
    reasons = []
    for name in ("part-00000", "part-00002", "part-00099"):
        table = c.read_shard("raw", name)
        batch, sigs = annotate_table(table, state)
        with monkeypatch.context() as m:
            m.delattr(RepetitionAnnotator, "annotate_batch")
            m.delattr(DiversityAnnotator, "annotate_batch")
            assert not any(hasattr(a, "annotate_batch") for a in state["annotators"] if isinstance(a, (RepetitionAnnotator, DiversityAnnotator)))
            plain, plain_sigs = annotate_table(table, state)
        assert batch.equals(plain), name
        assert np.array_equal(sigs, plain_sigs)
        reasons += batch.column("_reason").to_pylist()
    assert any(r and r.startswith("repetition:") for r in reasons)
    assert any(r and r.startswith("diversity:") for r in reasons)


@pytest.mark.parametrize("shingle,ngram", [(5, 13), (5, 3), (1, 8), (9, 4)])
def test_shingles_and_decontamination_candidates_equal_the_per_document_path(tmp_path, shingle, ngram):
    """The stage's batched MinHash shingles are each document's `shingle_ngrams`, exactly, and the
    batch's decontamination candidates are exactly the documents the per-document match finds (the
    stage then matches only those, to name the item)."""
    from filters.config import EvalSet
    from filters.decontam import EvalIndex
    from filters.minhash import shingle_ngrams

    rng = random.Random(ngram)
    items = [" ".join(rng.choice(["one", "two", "apples", "Tom", "has", "more", "than", "Sara", "cost", "each"])
                      for _ in range(rng.randint(3, 20))) for _ in range(40)]
    path = tmp_path / "eval.jsonl"
    path.write_text("".join(f'{{"question": "{q}"}}\n' for q in items))
    index = EvalIndex.load([EvalSet(name="ev", path=str(path), field="question")], ngram=ngram)
    ts = texts(200, 20, seed=shingle)
    planted = [rng.choice(items) for _ in range(60)]
    ts += [f"{t} {q} and then {t}" for t, q in zip(rng.sample(ts, 60), planted)]  # planted eval items
    ts += ["", "one", "one two", "one two three four"] * 3 + ["x"] * 4100  # > one chunk of documents
    docs = docs_of(ts)
    sets, candidate = ngram_batch.shingles_and_candidates(docs, shingle, ngram, index.contains)
    want_hits = [index.match_ngrams(d.ngrams(ngram)) for d in docs_of(ts)]
    assert len(sets) == len(docs) == len(candidate)
    for t, got, d in zip(ts, sets, docs_of(ts)):
        want = shingle_ngrams(d, shingle)
        assert got.dtype == np.uint64 and np.array_equal(got, want), t[:100]
    assert [bool(c) for c in candidate] == [h is not None for h in want_hits]  # exactly the documents with a match
    assert sum(h is not None for h in want_hits) >= sum(len(q.split()) >= ngram for q in planted) > 0  # planted items found
    assert candidate.sum() < len(docs) / 2  # the prefilter rules most documents out
    no_index = ngram_batch.shingles_and_candidates(docs, shingle, ngram, None)
    assert not no_index[1].any() and all(np.array_equal(a, b) for a, b in zip(no_index[0], sets))
