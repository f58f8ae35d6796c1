import numpy as np
import pyarrow as pa
import pytest

from curricula import CurriculumError, make_scorer, pacing_function
from curricula.scheduler import MixtureStage, Scheduler, TokenPool

EOT = 0


def _docs(n, base, length=20):
    # document i is made of tokens base+i (so a token says which document it came from)
    return [np.full(length, base + i, dtype=np.int32) for i in range(n)]


def _sched(seed=3, **kw):
    docs = _docs(50, 1)
    order = np.arange(50)  # documents already sorted easy -> hard
    args = dict(pools={"main": TokenPool(docs, order, EOT)}, batch_size=4, context=16, total_steps=100, seed=seed)
    args.update(kw)
    return Scheduler(**args)


def test_same_seed_same_batches_and_any_step_can_be_recomputed():
    a, b = _sched(), _sched()
    seq = [a.batch(s)[0] for s in range(10)]
    # a resumed scheduler asked for step 7 first gives what the uninterrupted one gave
    assert b.batch(7)[0].equal(seq[7])
    assert all(b.batch(s)[0].equal(seq[s]) for s in range(10))
    assert not _sched(seed=4).batch(0)[0].equal(seq[0])


def test_targets_are_inputs_shifted_and_contiguous():
    x, y = _sched().batch(5)
    assert x.shape == y.shape == (4, 16) and x.is_contiguous() and y.is_contiguous()
    assert x.dtype == y.dtype == __import__("torch").int64


def test_pacing_limits_the_pool_to_the_easiest_documents():
    s = _sched(pacing=pacing_function("linear", start=0.2, ramp=0.5))
    early = np.concatenate([s.batch(k)[0].numpy().ravel() for k in range(5)])
    late = np.concatenate([s.batch(k)[0].numpy().ravel() for k in range(80, 100)])
    doc_of = lambda toks: toks[toks != EOT] - 1  # noqa: E731
    # step < 5: pool is at most ~22% of 50 docs (+1 doc of overflow from a window)
    assert doc_of(early).max() <= 12
    assert doc_of(late).max() >= 40


def test_sequence_length_curriculum_keeps_tokens_per_step():
    s = _sched(context_pacing=pacing_function("linear", start=0.25, ramp=1.0), min_context=4)
    x0, _ = s.batch(0)
    x9, _ = s.batch(99)
    assert x0.shape[1] < x9.shape[1] == 16
    assert x0.numel() == x9.numel() == 64


def test_staged_mixture_follows_the_weights_of_each_stage():
    pools = {"main": TokenPool(_docs(20, 1), np.arange(20), EOT), "math": TokenPool(_docs(20, 1000), np.arange(20), EOT)}
    s = Scheduler(pools, batch_size=32, context=8, total_steps=10, seed=1,
                  stages=[MixtureStage(0.5, {"main": 1.0}), MixtureStage(1.0, {"main": 0.5, "math": 0.5})])
    first = s.batch(2)[0].numpy()
    assert (first[first != EOT] < 1000).all()
    later = np.concatenate([s.batch(k)[0].numpy().ravel() for k in range(5, 10)])
    frac_math = (later >= 1000).mean()
    assert 0.3 < frac_math < 0.7
    with pytest.raises(CurriculumError, match="unknown corpus 'code'"):
        Scheduler(pools, 4, 8, 10, 1, stages=[MixtureStage(1.0, {"code": 1.0})])


def test_a_corpus_smaller_than_one_window_is_refused():
    with pytest.raises(CurriculumError, match="fewer than one window"):
        Scheduler({"main": TokenPool(_docs(1, 1, length=3), np.arange(1), EOT)}, 2, 64, 10, 0)


def test_column_scorer_names_a_missing_column():
    t = pa.table({"id": ["a", "b"], "text": ["x", "y"], "word_count": [3, 5]})
    assert make_scorer("column", column="word_count").score(t).tolist() == [3.0, 5.0]
    assert make_scorer("column", column="word_count", invert=True).score(t).tolist() == [-3.0, -5.0]
    with pytest.raises(CurriculumError, match="no column 'flesch_kincaid_grade'.*word_count"):
        make_scorer("column", column="flesch_kincaid_grade").score(t)


def test_word_rarity_scores_rare_words_as_harder():
    t = pa.table({"text": ["The cat sat on the mat.", "Quixotic zephyrs obfuscate perspicacious sesquipedalians."]})
    easy, hard = make_scorer("word_rarity").score(t)
    assert hard > easy + 2


def test_model_loss_scorer_uses_the_given_reference():
    t = pa.table({"text": ["aa", "bbbb"]})
    s = make_scorer("model_loss", doc_loss=lambda texts: [len(x) * 0.5 for x in texts])
    assert s.score(t).tolist() == [1.0, 2.0]
    with pytest.raises(CurriculumError, match="reference model"):
        make_scorer("model_loss").score(t)
