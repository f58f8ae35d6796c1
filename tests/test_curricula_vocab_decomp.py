"""CLIMB's vocabulary curriculum and Dataset Decomposition's variable-length batches: exactly what
the scheduler hands the trainer, on hand-made token documents and through a real prepared experiment."""
import numpy as np
import pyarrow.parquet as pq
import pytest

from curricula import CurriculumError, pacing_function
from curricula.decomposition import DecomposedPool, DecomposedScheduler, decompose
from curricula.scheduler import MixtureStage, Scheduler
from curricula.vocabulary import VocabularyPool, allowed_tokens, token_ranks

EOT = 0


def _vocab_docs(rng):
    # 60 documents of common tokens 1..5; document k >= 20 also holds rare token 100 + k (seen once)
    docs = []
    for k in range(60):
        d = rng.integers(1, 6, size=int(rng.integers(10, 30))).astype(np.int32)
        if k >= 20:
            d[int(rng.integers(0, len(d)))] = 100 + k
        docs.append(d)
    return docs


def test_vocabulary_curriculum_hands_only_allowed_tokens_and_grows_the_set():
    docs = _vocab_docs(np.random.default_rng(0))
    ranks, n_vocab = token_ranks([docs], EOT)
    assert n_vocab == 6 + 40  # eot, 1..5 and the 40 rare tokens
    assert sorted(ranks[[0, 1, 2, 3, 4, 5]]) == [0, 1, 2, 3, 4, 5]  # common tokens and eot rank first
    pool = VocabularyPool(docs, np.arange(60), ranks, n_vocab, EOT, seed=1)
    pace = pacing_function("linear", start=0.2, ramp=0.8)
    sched = Scheduler({"main": pool}, batch_size=4, context=16, total_steps=100, seed=5, pacing=pace)
    seen_max = []
    for step in range(100):
        x, y = sched.batch(step)
        allowed = allowed_tokens(pace(step / 100), n_vocab)
        toks = np.concatenate([x.numpy().ravel(), y.numpy()[:, -1]])
        # every token the trainer gets (inputs and targets) is among the `allowed` most frequent
        assert ranks[toks].max() < allowed, (step, allowed)
        seen_max.append(int(ranks[toks].max()))
    assert allowed_tokens(pace(0.0), n_vocab) == 10  # 20% of 46 tokens
    assert max(seen_max[:2]) < 10 and max(seen_max[-20:]) >= 30  # rare tokens arrive as the set grows


def test_a_small_allowed_set_still_gives_one_window_and_full_fraction_all_documents():
    docs = _vocab_docs(np.random.default_rng(1))
    ranks, n_vocab = token_ranks([docs], EOT)
    pool = VocabularyPool(docs, np.arange(60), ranks, n_vocab, EOT, seed=0)
    assert pool.limit(0.01, 17) >= 17
    assert pool.limit(1.0, 17) == len(pool.tokens)
    assert pool.docs_allowed(0.13) == 20  # 6 tokens allowed: exactly the documents without a rare token
    assert pool.docs_allowed(0.2) == 24  # 10 tokens: and the 4 documents of the 4 rare tokens ranked first


def test_decompose_is_the_binary_expansion_capped_at_the_context():
    assert decompose(300, 128, 8) == [128, 128, 32, 8]  # 4 predictions dropped
    assert decompose(7, 128, 8) == []
    assert sum(decompose(1000, 64, 1)) == 1000


def _doc_docs(n, base, lengths):
    # document k is made of token base + k only: a token says which document it came from
    return [np.full(int(lengths[k]), base + k, dtype=np.int32) for k in range(n)]


def test_decomposed_batches_are_single_document_chunks_with_constant_tokens_per_step():
    rng = np.random.default_rng(0)
    docs = _doc_docs(80, 1, rng.integers(5, 200, size=80))
    pool = DecomposedPool(docs, np.arange(80), EOT, max_len=64, min_len=4)
    sched = DecomposedScheduler({"main": pool}, batch_size=4, context=64, total_steps=50, seed=3)
    lengths = []
    for step in range(50):
        x, y = sched.batch(step)
        B, L = x.shape
        assert L & (L - 1) == 0 and 4 <= L <= 64 and B * L == 4 * 64 and y.shape == x.shape
        assert (x[:, 1:] == y[:, :-1]).all()
        for row_x, row_y in zip(x.numpy(), y.numpy()):
            row = np.concatenate([row_x, row_y[-1:]])
            body = row[row != EOT]
            assert len(set(body.tolist())) == 1  # one document per row: no window mixes two
            assert EOT not in row[1:-1]  # end-of-text only at the frame's two ends
        lengths.append(L)
        assert sched.context_at(step) == L  # what the trainer logs as the step's context
    assert len(set(lengths)) >= 3
    again = DecomposedScheduler({"main": pool}, batch_size=4, context=64, total_steps=50, seed=3)
    assert all(again.batch(s)[0].equal(sched.batch(s)[0]) for s in (0, 17, 49))  # a pure function of (seed, step)


def test_buckets_are_drawn_by_their_token_share_and_length_pacing_grows_them():
    docs = _doc_docs(200, 1, np.full(200, 95))  # 96 predictions = 64 + 32: equal documents, 2/3 of tokens in 64
    pool = DecomposedPool(docs, np.arange(200), EOT, max_len=64, min_len=8)
    assert {L: len(b[0]) for L, b in pool.buckets.items()} == {32: 200, 64: 200} and pool.dropped == 0
    sched = DecomposedScheduler({"main": pool}, batch_size=2, context=64, total_steps=600, seed=1)
    share64 = np.mean([sched.context_at(s) == 64 for s in range(600)])
    assert 0.6 < share64 < 0.73
    grow = DecomposedScheduler({"main": pool}, batch_size=2, context=64, total_steps=600, seed=1,
                               context_pacing=pacing_function("linear", start=0.5, ramp=0.5))
    assert all(grow.context_at(s) == 32 for s in range(290))  # cap 64 * f(p) < 64 in the first half
    assert any(grow.context_at(s) == 64 for s in range(300, 600))


def test_decomposed_mixture_matches_the_weights_in_tokens():
    rng = np.random.default_rng(2)
    pools = {"main": DecomposedPool(_doc_docs(50, 1, rng.integers(10, 100, 50)), np.arange(50), EOT, 32, 4),
             "math": DecomposedPool(_doc_docs(50, 1000, rng.integers(10, 100, 50)), np.arange(50), EOT, 32, 4)}
    sched = DecomposedScheduler(pools, batch_size=8, context=32, total_steps=400, seed=1,
                                stages=[MixtureStage(1.0, {"main": 0.25, "math": 0.75})])
    toks = np.concatenate([sched.batch(s)[0].numpy().ravel() for s in range(400)])
    toks = toks[toks != EOT]
    assert 0.7 < (toks >= 1000).mean() < 0.8
    with pytest.raises(CurriculumError, match="power-of-two context"):
        DecomposedScheduler(pools, batch_size=8, context=48, total_steps=4, seed=1)


@pytest.mark.slow
def test_both_curricula_through_a_prepared_experiment_and_the_real_trainer(tmp_path):
    from test_ablate import make_corpus

    from trainers.config import Experiment
    from trainers.prepare import prepare
    from trainers.tokenizer import load_tokenizer
    from trainers.train import build_scheduler, train_run

    make_corpus(tmp_path / "corpus", n=120)
    exp = Experiment.model_validate({
        "name": "vd", "corpus": str(tmp_path / "corpus"), "out": str(tmp_path / "runs"), "seeds": [1],
        "tokenizer": {"vocab_size": 300}, "train": {"tokens": 3072, "batch_size": 4, "context": 32, "eval_every": 6, "log_every": 1},
        "samples": {"prompts": ["Once"], "max_tokens": 3},
        "curricula": [{"name": "vocab", "vocabulary_pacing": "linear", "vocabulary_start": 0.8, "ramp": 0.5},
                      {"name": "dd", "batching": "decomposed", "context_pacing": "linear", "context_start": 0.25, "min_chunk": 4}]})
    prep = prepare(exp)
    sched = build_scheduler(prep, exp.curriculum("vocab"), exp, 1, 32, 24)
    levels, n_vocab = sched.pools["main"].levels, sched.pools["main"].n_vocab
    assert n_vocab > 20 and (np.diff(levels) >= 0).all()
    assert 10 < sched.pools["main"].docs_allowed(0.8) < len(levels)  # every story shares most tokens
    tok_ranks, _ = token_ranks([[prep.sources["main"].docs[i] for i in prep.sources["main"].train_index()]], prep.eot)
    x, _ = sched.batch(0)
    assert tok_ranks[x.numpy()].max() < allowed_tokens(0.8, n_vocab)
    dd = build_scheduler(prep, exp.curriculum("dd"), exp, 1, 32, 24)
    assert {dd.batch(s)[0].numel() for s in range(24)} == {128}
    tok = load_tokenizer(prep.tokenizer_path)
    for row in dd.batch(23)[0].numpy():  # each row decodes to a piece of a single story
        assert tok.decode(row.tolist()).count("Once upon a time") <= 1
    for name in ("vocab", "dd"):
        r = train_run(exp, name, 1, threads=1, prep=prep)
        assert r["tokens"] == 3072 and r["final_val_loss"] < 5.7
    m = pq.read_table(tmp_path / "runs" / "dd" / "seed1" / "metrics.parquet").to_pylist()
    ctx = [r["value"] for r in m if r["metric"] == "context"]
    assert len(ctx) == 24 and min(ctx) < 32 and set(ctx) <= {4.0, 8.0, 16.0, 32.0}
