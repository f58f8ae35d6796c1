"""Minimal-pair probes: known preferences on a toy grammar, the scoring arithmetic against plain
loops, the CLI end to end on a real run and a real Hugging Face model, and bad input."""
import json
import math
import random
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest
import torch
import torch.nn.functional as F

from conftest import SHARED, run_cli
from corpora import Corpus
from trainers.config import Experiment
from trainers.heldout import heldout_warning
from trainers.ngram import NGramModel
from trainers.prepare import Prepared, SourceData
from trainers.probe import (TokenLM, load_hf_lm, load_run_lm, model_lm, pack_trees, probe, score_ids, score_trees,
                            score_windows, summarize, untrained_run_lm, vocab_share, vocabulary)
from trainers.probe_report import add_to_report
from trainers.probe_suites import ProbeError, load_suite

BLIMP = SHARED / "data" / "blimp"

# A toy grammar: singular subjects take "runs"/"sleeps", plural ones "run"/"sleep"; "cat" only ever
# appears with "the"; "a dogs" never occurs, but "a cats" does (so the model learns the wrong thing there).
def toy_corpus(n=300, seed=0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        s = []
        for _ in range(rng.randint(3, 6)):
            noun, plural = rng.choice([("dog", False), ("dogs", True), ("cat", False), ("cats", True)])
            verb = rng.choice(["run", "sleep"]) + ("" if plural else "s")
            det = "a" if noun in ("dog", "cats") and rng.random() < 0.5 else "the"
            s.append(f"{det.capitalize()} {noun} {verb}.")
        out.append(" ".join(s))
    return out


PAIRS = [  # paradigm, term, field, good, bad; what a bigram model of the toy grammar must do with each
    ("agreement", "subject_verb_agreement", "morphology", "The dog runs.", "The dog run."),        # pass
    ("agreement", "subject_verb_agreement", "morphology", "The dogs sleep.", "The dogs sleeps."),  # pass
    ("agreement", "subject_verb_agreement", "morphology", "A dog sleeps.", "A dog sleep."),        # pass
    ("unseen", "lexicon", "semantics", "The zebra runs.", "The yak runs."),                         # tie: both unseen
    ("determiner", "determiner", "syntax", "The dogs run.", "A dogs run."),                         # pass: "a dogs" never seen
]


def write_pairs(path: Path, pairs=PAIRS) -> Path:
    with open(path, "w") as f:
        for i, (p, t, fl, g, b) in enumerate(pairs):
            f.write(json.dumps({"good": g, "bad": b, "paradigm": p, "linguistics_term": t, "field": fl, "id": f"p{i}"}) + "\n")
    return path


def test_bigram_model_on_a_toy_grammar_passes_fails_and_ties_exactly_where_it_should(tmp_path):
    texts = toy_corpus()
    bigram = NGramModel(2).fit(texts)
    # and one whose "bad" sentence is what the corpus teaches: the bigram model must fail it
    pairs = PAIRS + [("reversed", "determiner", "syntax", "A dogs run.", "The dogs run.")]
    suite = load_suite("pairs", write_pairs(tmp_path / "pairs.jsonl", pairs))
    table = probe(suite, ngrams=[bigram], vocab=vocabulary(texts))
    acc = {(r["level"], r["group"]): r for r in summarize(table)}
    assert acc[("paradigm", "agreement")]["accuracy"] == 100.0
    assert acc[("paradigm", "unseen")]["accuracy"] == 50.0  # a tie counts half: neither word was ever seen
    assert acc[("paradigm", "determiner")]["accuracy"] == 100.0
    assert acc[("paradigm", "reversed")]["accuracy"] == 0.0
    assert acc[("field", "syntax")]["pairs"] == 2 and acc[("field", "syntax")]["accuracy"] == 50.0
    assert acc[("linguistics_term", "subject_verb_agreement")]["accuracy"] == 100.0
    assert acc[("overall", "mean")]["accuracy"] == (100 + 50 + 100 + 0) / 4  # the mean over paradigms
    # vocabulary: the "unseen" pair is the only one with words outside the training split
    share = vocab_share(suite, vocabulary(texts))
    assert share.tolist() == [1.0, 1.0, 1.0, 0.5, 1.0, 1.0]
    assert acc[("overall", "mean")]["in_vocab_pairs"] == 5
    assert acc[("overall", "mean")]["accuracy_in_vocab"] == pytest.approx(100 * 4 / 5)


def test_kneser_ney_distributions_sum_to_one_and_unigram_ignores_order():
    texts = toy_corpus(100)
    for order in (1, 2, 5):
        m = NGramModel(order).fit(texts)
        vocab = sorted(m.vocab) + ["<unknown word>"]
        for hist in (["<s>"] * 4, ["<s>", "<s>", "<s>", "the"], ["a", "dog", "runs", "."]):
            assert sum(m.prob(hist, w) for w in vocab) == pytest.approx(1.0, abs=1e-9)
    uni = NGramModel(1).fit(texts)
    assert uni.sentence_logprob("The dog runs.") == uni.sentence_logprob("runs dog The.")


def test_an_unseen_word_keeps_some_probability_when_no_ngram_was_seen_once():
    """Every bigram of this corpus is seen twice: Ney's discount n1 / (n1 + 2 n2) would be 0 and an
    unseen word's probability 0 (a math domain error in the log); the probe's baselines must score any text."""
    m = NGramModel(2).fit(["The dog ran.", "The dog ran."])
    lp, n = m.sentence_logprob("The cat ran.")
    assert n == 4 and math.isfinite(lp) and lp < m.sentence_logprob("The dog ran.")[0]
    vocab = sorted(m.vocab) + ["<unknown word>"]
    assert sum(m.prob(["the"], w) for w in vocab) == pytest.approx(1.0, abs=1e-9)


def _toy_lm(context=64, vocab=50, seed=0):
    """A real (randomly initialised) model of ours behind the TokenLM interface."""
    from trainers.model import ModelConfig, Transformer

    torch.manual_seed(seed)
    model = Transformer(ModelConfig(vocab_size=vocab, dim=32, n_layers=2, n_heads=4, context=context, multiple_of=16)).eval()
    return model, TokenLM("model", lambda t: [], 0, context, lambda x, m: model(x)[m], batch_size=3)


def test_batched_scores_equal_one_sentence_at_a_time():
    model, lm = _toy_lm()
    rng = np.random.default_rng(0)
    seqs = [[0] + rng.integers(1, 50, size=int(n)).tolist() for n in rng.integers(1, 30, size=11)]
    sums, counts = score_ids(lm, seqs)
    for s, got, n in zip(seqs, sums, counts):
        x = torch.tensor([s])
        with torch.no_grad():
            lp = F.log_softmax(model(x[:, :-1]), -1)[0].gather(1, x[0, 1:, None]).sum().item()
        assert got == pytest.approx(lp, rel=1e-5, abs=1e-4)
        assert n == len(s) - 1


def _pairs_with_shared_prefixes(rng, n=40, vocab=6):
    """Minimal-pair-like sequences: each pair shares a prefix and differs in one token (some are
    duplicates, or a prefix of another one), as BLiMP's good and bad sentences do."""
    seqs = []
    for _ in range(n):
        base = [0] + rng.integers(1, vocab, size=int(rng.integers(1, 20))).tolist()
        alt = list(base)
        if len(alt) > 2:
            alt[int(rng.integers(1, len(alt)))] = int(rng.integers(1, vocab))
        seqs += [base, alt + rng.integers(1, vocab, size=int(rng.integers(0, 3))).tolist()]
    return seqs + [seqs[0], seqs[1][:2]]


def test_prefix_tree_rows_score_each_sequence_as_if_alone():
    torch.manual_seed(0)
    from trainers.model import ModelConfig, Transformer

    model = Transformer(ModelConfig(vocab_size=50, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, context=64, multiple_of=16))
    lm = model_lm("model", model, None, 0, "cpu", batch_size=4)
    seqs = _pairs_with_shared_prefixes(np.random.default_rng(1))
    rows = pack_trees(seqs, 32)
    assert sorted(k for r in rows for k in r.members) == list(range(len(seqs)))
    assert all(len(r.tokens) <= 32 for r in rows)
    packed = sum(len(r.tokens) for r in rows)
    assert packed < 0.8 * sum(map(len, seqs))  # shared prefixes go through the model once
    for r in rows:  # every token's parent comes before it, one position earlier
        assert all(p < i and r.pos[p] == r.pos[i] - 1 for i, p in enumerate(r.parent) if p >= 0)
    got, n = score_trees(lm, seqs, row=32)
    want, n_want = score_windows(lm, seqs)
    assert (n == n_want).all()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    for s, g in zip(seqs[:6], got):  # and against one sequence through the model's plain forward
        x = torch.tensor([s])
        with torch.no_grad():
            lp = F.log_softmax(model(x[:, :-1]), -1)[0].gather(1, x[0, 1:, None]).sum().item()
        assert g == pytest.approx(lp, rel=1e-5, abs=1e-4)
    # score_ids takes the tree path for what fits a row and windows for the rest
    long = [0] + list(range(1, 50)) * 3  # longer than the context: windows
    both, nb = score_ids(lm, seqs + [long])
    np.testing.assert_allclose(both[:-1], got, rtol=1e-6, atol=1e-6)
    assert both[-1] == pytest.approx(score_windows(lm, [long])[0][0], rel=1e-6) and nb[-1] == len(long) - 1
    with pytest.raises(ValueError, match="does not fit"):
        pack_trees([[0] * 40], 32)
    # at the context's edge: `context` tokens fit a tree row, context + 1 go to a window
    edge = [[0] + [1 + i % 49 for i in range(n)] for n in (63, 64)] + [[0] + [1 + i % 49 for i in range(63)] + [3]]
    np.testing.assert_allclose(score_ids(lm, edge)[0], score_windows(lm, edge)[0], rtol=1e-5)


def test_a_long_series_of_rows_is_scored_in_batches_of_one_shape(monkeypatch):
    """From COMPILE_ROWS rows on the last batch is filled up with empty rows (a compiled model sees
    one shape); the scores do not change. (compile=False: the padding is under test, not inductor.)"""
    import trainers.probe as probe_mod
    from trainers.model import ModelConfig, Transformer

    torch.manual_seed(0)
    model = Transformer(ModelConfig(vocab_size=50, dim=32, n_layers=2, n_heads=4, context=64, multiple_of=16))
    lm = model_lm("model", model, None, 0, "cpu", batch_size=6, compile=False)  # 3 rows of 32 per batch
    seen = []
    inner = lm.logits_tree
    lm.logits_tree = lambda x, *a: seen.append((tuple(x.shape), a[-1])) or inner(x, *a)
    seqs = _pairs_with_shared_prefixes(np.random.default_rng(2))
    want, _ = score_trees(lm, seqs, row=32)
    monkeypatch.setattr(probe_mod, "COMPILE_ROWS", 1)
    seen.clear()
    got, _ = score_trees(lm, seqs, row=32)
    assert len(pack_trees(seqs, 32)) % 3 and len(set(seen)) == 1 and seen[0] == ((3, 32), True)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_sentences_longer_than_the_context_are_scored_in_windows():
    model, lm = _toy_lm(context=8)
    s = [0] + list(range(1, 20))
    (got,), (n,) = score_ids(lm, [s])
    want = 0.0
    for j in range(0, len(s) - 1, 8):  # the trainer's held-out windows: 8 targets each, no overlap
        w = torch.tensor([s[j:j + 9]])
        with torch.no_grad():
            want += F.log_softmax(model(w[:, :-1]), -1)[0].gather(1, w[0, 1:, None]).sum().item()
    assert n == 19 and got == pytest.approx(want, rel=1e-5)


def _hf_model(tmp_path):
    """A tiny randomly initialised Llama in a Hugging Face folder, with a real tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from trainers.tokenizer import train_tokenizer

    tok = train_tokenizer(toy_corpus(50), 300)
    folder = tmp_path / "hf"
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>")
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, max_position_embeddings=64, tie_word_embeddings=True)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    return folder, fast


def test_hf_model_scores_equal_a_plain_transformers_loop(tmp_path):
    from transformers import AutoModelForCausalLM

    folder, tok = _hf_model(tmp_path)
    lm = load_hf_lm(folder, batch_size=4)
    texts = ["The dog runs.", "A cats sleep.", "The dogs run and the cat sleeps.", "Dog."]
    sums, counts = lm.score(texts)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    for t, got, n in zip(texts, sums, counts):
        ids = torch.tensor([[tok.bos_token_id] + tok(t, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            lp = F.log_softmax(model(ids).logits[0, :-1], -1).gather(1, ids[0, 1:, None]).sum().item()
        assert got == pytest.approx(lp, rel=1e-5) and n == ids.shape[1] - 1


def make_toy_corpus(root: Path) -> Path:
    rows = [{"id": f"d{i:04d}", "text": t} for i, t in enumerate(toy_corpus(240))]
    Corpus(root).init("synthetic").write_shard("clean", "part-00000", pa.Table.from_pylist(rows))
    return root


EXP = """
name = "toy"
corpus = "{corpus}"
out = "{out}"
seeds = [3]
[tokenizer]
vocab_size = 280
[train]
tokens = 3000
batch_size = 4
context = 32
eval_every = 20
log_every = 10
[samples]
prompts = ["The"]
max_tokens = 4
[[curricula]]
name = "random"
"""


@pytest.mark.slow
def test_probe_cli_on_a_trained_run_writes_probes_and_prints_json(tmp_path):
    exp = tmp_path / "toy.toml"
    exp.write_text(EXP.format(corpus=make_toy_corpus(tmp_path / "corpus"), out=tmp_path / "runs"))
    r = run_cli("train", exp, timeout=600)
    assert r.returncode == 0, r.stderr
    run = tmp_path / "runs" / "random" / "seed3"
    pairs = write_pairs(tmp_path / "pairs.jsonl")
    r = run_cli("probe", run, "--suite", "pairs", "--data", pairs, "--format", "json", timeout=600)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out["accuracy"]) == {"agreement", "unseen", "determiner"}
    assert out["mean"] == pytest.approx(np.mean(list(out["accuracy"].values())), abs=0.01)
    assert set(out["baselines"]) == {"untrained", "unigram", "bigram", "5-gram"}
    assert out["in_vocab"]["pairs"] == 4  # every pair but the zebra/yak one
    con = duckdb.connect()
    rows = con.execute(f"SELECT scorer, count(*), count(DISTINCT step) FROM '{run}/probes.parquet' GROUP BY 1 ORDER BY 1").fetchall()
    assert rows == [("5-gram", 5, 0), ("bigram", 5, 0), ("model", 5, 1), ("unigram", 5, 0), ("untrained", 5, 1)]
    # the table says the same as the parquet; the untrained model is the trainer's step-0 model (same seed, same init)
    lm, un = load_run_lm(run), untrained_run_lm(run)
    suite = load_suite("pairs", pairs)
    direct = {(r["scorer"], r["level"], r["group"]): r["accuracy"] for r in summarize(probe(suite, lm, untrained=un))}
    assert direct[("model", "overall", "mean")] == pytest.approx(out["mean"], abs=0.01)
    assert direct[("untrained", "overall", "mean")] == pytest.approx(out["baselines"]["untrained"], abs=0.01)
    ck = torch.load(run / "checkpoint.pt", weights_only=False)
    assert lm.step == ck["scheduler"]["step"] and lm.tokens == ck["tokens"]
    # csv and table formats; a second probe replaces its rows instead of adding to them
    r = run_cli("probe", run, "--suite", "pairs", "--data", pairs, "--format", "csv", "--no-baselines", timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith("level,group,pairs,model,per-token")
    assert con.execute(f"SELECT count(*) FROM '{run}/probes.parquet'").fetchone()[0] == 25


@pytest.mark.skipif(not BLIMP.is_dir(), reason="BLiMP is not in ../shared/data/blimp")
def test_blimp_suite_reads_paradigms_fields_and_published_numbers():
    suite = load_suite("blimp", BLIMP, ["anaphor_gender_agreement", "adjunct_island"])
    assert len(suite) == 2000 and suite.paradigms() == ["anaphor_gender_agreement", "adjunct_island"]
    assert set(suite.term) == {"anaphor_agreement", "island_effects"} and set(suite.field_) == {"morphology", "syntax"}
    assert suite.published["paper GPT-2"] == {"anaphor_gender_agreement": 99.4, "adjunct_island": 89.4}
    assert len(load_suite("blimp", BLIMP)) == 67_000


def test_bad_suites_are_one_line_errors(tmp_path):
    with pytest.raises(ProbeError, match="BLiMP folder not found"):
        load_suite("blimp", tmp_path / "nope")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"good": "A dog runs.", "bad": "A dog run."}\n{"good": "x"}\n')
    with pytest.raises(ProbeError, match=r"bad.jsonl:2: needs non-empty string fields good and bad"):
        load_suite("pairs", bad)
    bad.write_text('{"good": "A dog runs.", "bad": "A dog run."}\nnot json\n')
    with pytest.raises(ProbeError, match=r"bad.jsonl:2: invalid JSON"):
        load_suite("pairs", bad)
    with pytest.raises(ProbeError, match="unknown suite 'ewok'"):
        load_suite("ewok", bad)
    if BLIMP.is_dir():
        with pytest.raises(ProbeError, match="no paradigm 'adjunct_islands'"):
            load_suite("blimp", BLIMP, ["adjunct_islands"])


def test_probe_cli_bad_input_is_one_line_and_exit_2(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl")
    r = run_cli("probe", tmp_path / "nothing-here", "--suite", "pairs", "--data", pairs, timeout=120)
    assert r.returncode == 2 and "not a folder" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    (tmp_path / "empty").mkdir()
    r = run_cli("probe", tmp_path / "empty", "--suite", "pairs", "--data", pairs, timeout=120)
    assert r.returncode == 2 and "neither a run folder" in r.stderr
    r = run_cli("probe", tmp_path / "empty", "--suite", "blimp", "--data", tmp_path / "no-blimp", timeout=120)
    assert r.returncode == 2 and "BLiMP folder not found" in r.stderr


def _prep(lengths_heldout: list[int], n_train: int = 10) -> Prepared:
    docs = [np.zeros(n, np.int32) for n in [100] * n_train + lengths_heldout]
    held = np.array([False] * n_train + [True] * len(lengths_heldout))
    return Prepared(Path("."), 0, 300, {"main": SourceData("main", [str(i) for i in range(len(docs))], docs, held)},
                    ["all"], "length")


def test_heldout_warning_counts_evaluated_documents_and_tokens():
    exp = Experiment.model_validate({"name": "x", "corpus": "c", "curricula": [{"name": "random"}], "train": {"eval_docs": 60}})
    assert heldout_warning(exp, _prep([500] * 60)) is None
    w = heldout_warning(exp, _prep([500] * 49))
    assert w.startswith("held-out split too small for a stable estimate: 49 documents, 24,500 tokens")
    assert "60 documents, 18,000 tokens" in heldout_warning(exp, _prep([300] * 65))  # only eval_docs = 60 are evaluated
    low = Experiment.model_validate({"name": "x", "corpus": "c", "curricula": [{"name": "random"}], "min_heldout_docs": 5,
                                     "min_heldout_tokens": 100})
    assert heldout_warning(low, _prep([50] * 5)) is None


def test_report_section_and_warning_are_inserted_once(tmp_path):
    rep = tmp_path / "report.md"
    rep.write_text("# Curriculum ablation: x\n\nCorpus `c`.\n\n## Verdicts\n\n- a\n\n## Judge scores\n\njudged\n")
    for _ in range(2):
        add_to_report(rep, ["## BLiMP: grammatical minimal pairs (blimp)", "", "| a |", ""], "too small")
    text = rep.read_text()
    assert text.count("## BLiMP") == 1 and text.count("too small") == 1
    assert text.index("# Curriculum") < text.index("color:red") < text.index("## Verdicts") < text.index("## BLiMP") < text.index("## Judge")
    add_to_report(rep, [], None)
    assert "color:red" not in rep.read_text() and "## BLiMP" not in rep.read_text() and "judged" in rep.read_text()


def test_final_bits_per_byte_is_read_when_the_trainer_logs_it_and_absent_otherwise(tmp_path):
    import pyarrow.parquet as pq

    from trainers.probe_report import _final_bpb

    rows = [{"curriculum": "random", "seed": 1, "step": s, "tokens": 10 * s, "metric": m, "value": v}
            for s, m, v in [(0, "val_loss", 5.0), (0, "val_bpb", 2.5), (9, "val_loss", 3.0), (9, "val_bpb", 1.25)]]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "metrics.parquet")
    assert _final_bpb(tmp_path) == 1.25
    pq.write_table(pa.Table.from_pylist([r for r in rows if r["metric"] != "val_bpb"]), tmp_path / "metrics.parquet")
    assert _final_bpb(tmp_path) is None


def test_probe_every_picks_the_step_checkpoints_on_its_schedule(tmp_path):
    from trainers.probe_report import step_checkpoints

    (tmp_path / "checkpoints").mkdir()
    for s in (10, 15, 20):
        (tmp_path / "checkpoints" / f"step{s:06d}.pt").write_bytes(b"")
    assert [s for s, _ in step_checkpoints(tmp_path, 5)] == [10, 15, 20]
    assert [s for s, _ in step_checkpoints(tmp_path, 10)] == [10, 20]
    assert step_checkpoints(tmp_path, 0) == [] and step_checkpoints(tmp_path / "none", 5) == []
