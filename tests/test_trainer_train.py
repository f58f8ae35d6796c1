"""The training loop on a small synthetic corpus written with corpora's Corpus.write_shard."""
import json
from pathlib import Path
import random

import duckdb
import pyarrow as pa
import pytest
import torch

from corpora import Corpus
from trainers.config import load_experiment
from trainers.sample import load_run, sample_run
from trainers.train import train_run


def make_corpus(root, n=240, seed=0):
    rng = random.Random(seed)
    names, animals, things = ["Tom", "Lily", "Sam", "Mia"], ["dog", "cat", "bird", "frog"], ["ball", "kite", "box", "hat"]
    rows = []
    for i in range(n):
        nm, a, t, k = rng.choice(names), rng.choice(animals), rng.choice(things), rng.randint(1, 5)
        s = [f"Once upon a time, {nm} had a {a}.", f"The {a} liked the {t}."]
        s += [rng.choice([f"{nm} played with the {t}.", f"The {a} found a peculiar {t}.", f"{nm} was happy."]) for _ in range(k)]
        rows.append({"id": f"doc{i:05d}", "text": " ".join(s + ["The end."]), "grade": float(k)})
    c = Corpus(root).init("synthetic")
    c.write_shard("clean", "part-00000", pa.Table.from_pylist(rows))
    return root


EXP = """
name = "t"
corpus = "{corpus}"
out = "{out}"
seeds = [1, 2]
scorer = "{scorer}"
[tokenizer]
vocab_size = 300
[reference]
tokens = 4000
[train]
tokens = 12000
batch_size = 4
context = 64
eval_every = 8
log_every = 3
checkpoint_every = 4
eval_docs = 16
[samples]
prompts = ["Once upon a time"]
max_tokens = 12
[[curricula]]
name = "random"
[[curricula]]
name = "easy"
order = "easy_to_hard"
pacing = "linear"
start = 0.3
context_pacing = "root"
"""


def exp_file(tmp_path, out, scorer="column:grade"):
    p = tmp_path / f"{out}.toml"
    p.write_text(EXP.format(corpus=tmp_path / "corpus", out=tmp_path / out, scorer=scorer))
    return p


@pytest.fixture
def corpus(tmp_path):
    return make_corpus(tmp_path / "corpus")


def _curve(run):
    con = duckdb.connect()
    rows = con.execute(f"SELECT metric, step, value FROM '{run}/metrics.parquet' ORDER BY ALL").fetchall()
    con.close()
    return rows


@pytest.mark.slow
def test_resume_gives_the_same_loss_curve(tmp_path, corpus):
    whole = train_run(load_experiment(exp_file(tmp_path, "whole")), "easy", 1, threads=1)
    exp = load_experiment(exp_file(tmp_path, "cut"))
    part = train_run(exp, "easy", 1, threads=1, stop_at_step=14)  # a crash between the checkpoints at 12 and 16
    ck = torch.load(tmp_path / "cut" / "easy" / "seed1" / "checkpoint.pt", weights_only=False)
    assert ck["scheduler"]["step"] == 12 and part["steps"] < whole["steps"]
    # what a resume needs and nothing stored elsewhere (the metrics are in metrics.parquet; the LR is lr_at(step))
    assert set(ck) == {"model", "optimizer", "model_config", "scheduler", "tokens", "fingerprint"}
    # the re-run resumes from step 12 and must retrace the same numbers
    resumed = train_run(exp, "easy", 1, threads=1)
    a, b = _curve(whole["run"]), _curve(resumed["run"])
    assert len(a) > 20 and [r[:2] for r in a] == [r[:2] for r in b]
    assert [r[2] for r in a] == [r[2] for r in b]  # the numbers themselves, not approximately
    assert resumed["final_val_loss"] == whole["final_val_loss"]
    # same inputs and seed, same bytes
    assert (tmp_path / "whole/easy/seed1/metrics.parquet").read_bytes() == (tmp_path / "cut/easy/seed1/metrics.parquet").read_bytes()
    steps = {r[1] for r in a if r[0] == "train_loss"}
    assert steps == set(range(1, whole["steps"] + 1))


@pytest.mark.slow
def test_run_outputs_are_queryable_and_loadable(tmp_path, corpus):
    res = train_run(load_experiment(exp_file(tmp_path, "out")), "easy", 2, threads=1)
    run = tmp_path / "out" / "easy" / "seed2"
    assert res["run"] == str(run)
    con = duckdb.connect()
    metrics = dict(con.execute(f"SELECT metric, count(*) FROM '{run}/metrics.parquet' GROUP BY 1").fetchall())
    # validation overall and by difficulty bucket, every N steps and at the end
    assert metrics["val_loss"] == metrics["val_loss/easy"] == metrics["val_loss/hard"] >= 3
    first, last = con.execute(f"SELECT first(value ORDER BY step), last(value ORDER BY step) FROM '{run}/metrics.parquet' WHERE metric = 'val_loss'").fetchone()
    assert last < first
    # context grows under the sequence-length curriculum; the LR warms up and decays
    ctx = [r[0] for r in con.execute(f"SELECT value FROM '{run}/metrics.parquet' WHERE metric='context' ORDER BY step").fetchall()]
    assert ctx[0] < ctx[-1] == 64
    # scores are columns of a Parquet file beside the runs
    n, buckets = con.execute(f"SELECT count(*), count(DISTINCT bucket) FROM '{tmp_path}/out/scores.parquet' WHERE score_grade IS NOT NULL").fetchone()
    assert n == 240 and buckets == 3
    con.close()
    assert (run / "tokenizer.json").exists() and list((run / "tb").glob("events.out.tfevents.*"))
    assert json.loads((run / "samples.jsonl").read_text().splitlines()[0])["prompt"] == "Once upon a time"
    model, tok = load_run(run)
    assert model.num_params() == res["params"]
    a = sample_run(run, ["Once upon a time", "The dog"], seed=3, temperature=0.9, max_tokens=10)
    b = sample_run(run, ["Once upon a time", "The dog"], seed=3, temperature=0.9, max_tokens=10)
    assert a == b and len(a) == 2 and all(isinstance(s, str) for s in a)
    # a finished run is not trained again
    again = train_run(load_experiment(exp_file(tmp_path, "out")), "easy", 2, threads=1)
    assert again["final_val_loss"] == res["final_val_loss"]
    # the corpus grows: the prepared data is not reused and the finished run is not taken as current
    extra = [{"id": "zz1", "text": "A new story about a kite.", "grade": 1.0}]
    Corpus(tmp_path / "corpus").write_shard("clean", "part-00001", pa.Table.from_pylist(extra))
    from trainers.train import TrainError

    with pytest.raises(TrainError, match="older data"):
        train_run(load_experiment(exp_file(tmp_path, "out")), "easy", 2, threads=1)


@pytest.mark.slow
def test_model_loss_scorer_trains_a_reference_first(tmp_path, corpus):
    from trainers.train import prepare_experiment

    prep = prepare_experiment(load_experiment(exp_file(tmp_path, "ml", scorer="model_loss")))
    s = prep.sources["main"].scores["model_loss"]
    assert len(s) == 240 and (s > 0).all() and s.std() > 0
    con = duckdb.connect()
    assert con.execute(f"SELECT count(score_model_loss) FROM '{tmp_path}/ml/scores.parquet'").fetchone()[0] == 240


@pytest.mark.slow
def test_staged_mixture_of_two_corpora(tmp_path, corpus):
    rows = [{"id": f"m{i}", "text": f"Q: what is {i} plus {i + 1}? A: {i} + {i + 1} = {2 * i + 1}."} for i in range(120)]
    Corpus(tmp_path / "math").init("math").write_shard("clean", "part-00000", pa.Table.from_pylist(rows))
    body = EXP.format(corpus=tmp_path / "corpus", out=tmp_path / "mix", scorer="length").split("[[curricula]]")[0]
    body = body.replace('scorer = "length"', f'scorer = "length"\ncorpora = {{ math = "{tmp_path / "math"}" }}')
    body += '[[curricula]]\nname = "math-later"\nmixture = [{ until = 0.5, weights = { main = 1.0 } }, { until = 1.0, weights = { main = 0.5, math = 0.5 } }]\n'
    (tmp_path / "mix.toml").write_text(body)
    res = train_run(load_experiment(tmp_path / "mix.toml"), "math-later", 1, threads=1)
    con = duckdb.connect()
    math = [r[0] for r in con.execute(f"SELECT value FROM '{res['run']}/metrics.parquet' WHERE metric = 'val_loss/math' ORDER BY step").fetchall()]
    # math is held out of the first half and mixed in later: its loss falls once it is
    assert len(math) >= 3 and math[-1] < math[len(math) // 2]


def test_token_bytes_count_the_utf8_bytes_of_the_text(tmp_path):
    from trainers.evaluate import token_bytes
    from trainers.tokenizer import encode_many, eot_id, train_tokenizer

    texts = ["Once upon a time, a café.", "Zebra 🦓 naïve déjà vu!", "plain ascii words here"] * 10
    tok = train_tokenizer(texts, 300)
    nb = token_bytes(tok)
    assert nb[eot_id(tok)] == 0
    for t, ids in zip(texts, encode_many(tok, texts)):
        assert nb[ids].sum() == len(t.encode("utf-8"))


def test_val_bpb_is_the_summed_loss_in_bits_over_the_bytes(tmp_path):
    import math

    import numpy as np

    from trainers.evaluate import HeldOut, token_bytes
    from trainers.model import Transformer, preset
    from trainers.tokenizer import encode_many, eot_id, train_tokenizer

    texts = ["The dog ran.", "A café, naïve 🦓!"]
    tok = train_tokenizer(texts * 20, 280)
    eot, docs = eot_id(tok), encode_many(tok, texts)
    torch.manual_seed(0)
    model = Transformer(preset("tiny", vocab_size=tok.get_vocab_size(), context=64))
    held = HeldOut({"main": docs}, np.zeros(2, dtype=np.int64), ["all"], token_bytes(tok), eot)
    got = held.metrics(model, 64, 8, "cpu", "float32")
    # by hand: each document framed by end-of-text, every next token's negative log-likelihood summed
    nll, n = 0.0, 0
    for d in docs:
        s = torch.tensor([[eot, *d.tolist(), eot]])
        logp = torch.log_softmax(model(s[:, :-1]).double(), -1)
        nll -= logp[0, torch.arange(s.shape[1] - 1), s[0, 1:]].sum().item()
        n += s.shape[1] - 1
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)  # 12 + 21 bytes (é, ï: 2 each, 🦓: 4)
    assert n_bytes == 33
    assert got["val_bpb"] == pytest.approx(nll / math.log(2) / n_bytes, rel=1e-5)
    assert got["val_loss"] == pytest.approx(nll / n, rel=1e-5)


def test_lr_at_is_warmup_then_cosine_or_wsd():
    from trainers.config import TrainConfig
    from trainers.train import lr_at

    cos = TrainConfig(lr=1.0, warmup=0.1, min_lr_ratio=0.1, schedule="cosine")
    assert [lr_at(s, cos, 100) for s in (0, 9)] == [0.1, 1.0]
    assert lr_at(10, cos, 100) == 1.0 and lr_at(55, cos, 100) == pytest.approx(0.55) and lr_at(100, cos, 100) == pytest.approx(0.1)
    wsd = TrainConfig(lr=1.0, warmup=0.1, min_lr_ratio=0.0, schedule="wsd", decay=0.2)
    assert lr_at(50, wsd, 100) == lr_at(79, wsd, 100) == 1.0 and lr_at(90, wsd, 100) == pytest.approx(0.5)


@pytest.mark.slow
def test_val_bpb_is_recorded_at_every_evaluation(tmp_path, corpus):
    res = train_run(load_experiment(exp_file(tmp_path, "bpb")), "random", 1, threads=1)
    con = duckdb.connect()
    rows = con.execute(f"SELECT l.step, l.value, b.value FROM '{res['run']}/metrics.parquet' l JOIN '{res['run']}/metrics.parquet' b "
                       "USING (step) WHERE l.metric = 'val_loss' AND b.metric = 'val_bpb' ORDER BY step").fetchall()
    assert [r[0] for r in rows] == [0, 8, 16, 24, 32, 40, 47]  # 47 steps, eval_every 8, and at the end
    # same tokens, so bpb / loss is one constant: tokens / bytes / ln 2
    ratios = [b / loss for _, loss, b in rows]
    assert max(ratios) - min(ratios) < 1e-9 and rows[-1][2] < rows[0][2]


@pytest.mark.slow
def test_probe_every_keeps_the_model_at_those_steps(tmp_path, corpus):
    from trainers.probe import load_run_lm
    from trainers.probe_report import step_checkpoints

    exp = load_experiment(exp_file(tmp_path, "snap"))
    exp = exp.model_copy(update={"probe": exp.probe.model_copy(update={"probe_every": 10})})
    res = train_run(exp, "random", 1, threads=1)
    steps = step_checkpoints(Path(res["run"]), 10)
    assert [s for s, _ in steps] == [10, 20, 30, 40]  # 47 steps: the final model is checkpoint.pt
    ck = torch.load(steps[0][1], weights_only=False)
    assert set(ck) == {"model", "model_config", "tokens", "scheduler"} and ck["scheduler"]["step"] == 10
    early, final = load_run_lm(res["run"], checkpoint=steps[0][1]), load_run_lm(res["run"])
    assert (early.step, final.step) == (10, 47)
    ids = torch.tensor([early.encode(["Once upon a time, Tom had a dog."])[0]])
    mask = torch.ones_like(ids, dtype=torch.bool)
    assert not torch.allclose(early.logits_at(ids, mask), final.logits_at(ids, mask))  # another model than the final one
    # the snapshots do not touch the run itself: the same curve as a run without them
    plain = train_run(load_experiment(exp_file(tmp_path, "plain")), "random", 1, threads=1)
    assert _curve(res["run"]) == _curve(plain["run"]) or [r for r in _curve(res["run"]) if r[0] != "tokens_per_s"] == \
        [r for r in _curve(plain["run"]) if r[0] != "tokens_per_s"]


@pytest.mark.slow
def test_compiled_training_is_deterministic_and_follows_the_eager_curve(tmp_path, corpus):
    from trainers.model import compile_unavailable

    if compile_unavailable(torch.device("cpu")):
        pytest.skip(compile_unavailable(torch.device("cpu")))
    runs = {}
    for name, flag in (("c1", "true"), ("c2", "true"), ("eager", "false")):
        p = exp_file(tmp_path, name)
        p.write_text(p.read_text().replace("[train]\n", f"[train]\ncompile = {flag}\n"))
        runs[name] = train_run(load_experiment(p), "easy", 1, threads=1)  # "easy" grows the context: several shapes
    a, b, e = (_curve(runs[n]["run"]) for n in ("c1", "c2", "eager"))
    assert a == b  # same seed, same numbers
    val = lambda c: [v for m, _, v in c if m == "val_loss"]  # noqa: E731
    assert val(a) == pytest.approx(val(e), rel=2e-3)  # and the compiled model is the same model


@pytest.mark.slow
def test_bf16_autocast_on_the_cpu_is_deterministic_and_follows_the_fp32_curve(tmp_path, corpus):
    """`dtype = "bfloat16"` on a CPU (what pays on CPUs with AMX; README): the run is repeatable
    number for number and learns what the fp32 run learns."""
    runs = {}
    for name, dtype in (("b1", "bfloat16"), ("b2", "bfloat16"), ("f", "float32")):
        p = exp_file(tmp_path, name)
        p.write_text(p.read_text().replace("[train]\n", f'[train]\ndtype = "{dtype}"\ncompile = false\n'))
        runs[name] = train_run(load_experiment(p), "random", 1, threads=1)
    a, b, f = (_curve(runs[n]["run"]) for n in ("b1", "b2", "f"))
    assert a == b
    val = lambda c: [v for m, _, v in c if m == "val_loss"]  # noqa: E731
    assert val(a) != val(f)  # bf16 really ran: other numbers than fp32's
    assert val(a)[-1] < 0.8 * val(a)[0]
    assert val(a) == pytest.approx(val(f), rel=5e-3)  # measured: within 0.1%


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_trains_on_a_gpu_with_bf16_autocast_compile_and_fused_adamw(tmp_path, corpus):
    p = exp_file(tmp_path, "gpu")
    p.write_text(p.read_text().replace("[train]\n", '[train]\ndevice = "cuda"\ncompile = true\n'))  # dtype "auto": bf16
    res = train_run(load_experiment(p), "easy", 1)
    con = duckdb.connect()
    val = [r[0] for r in con.execute(f"SELECT value FROM '{res['run']}/metrics.parquet' WHERE metric = 'val_loss' ORDER BY step").fetchall()]
    assert val[-1] < val[0] and res["tokens_per_s"] > 0


def test_a_fixed_heldout_set_replaces_the_split(tmp_path, corpus):
    """`heldout_from`: every corpus document trains; the held-out documents are the file's (the demo's
    150 children's stories: enough for a stable estimate, so no warning), and the column scorer
    still buckets (held-out rows have no `grade`: the last bucket)."""
    from trainers.heldout import heldout_size, heldout_warning
    from trainers.prepare import prepare

    p = exp_file(tmp_path, "fixed")
    p.write_text(p.read_text().replace('out = ', 'heldout_from = "heldout_stories"\nout = ').replace("eval_docs = 16", "eval_docs = 1000"))
    exp = load_experiment(p)
    prep = prepare(exp)
    main = prep.sources["main"]
    assert len(main.train_index()) == 240 and len(main.val_index()) == 150
    assert all(main.ids[i].startswith("heldout:heldout-") for i in main.val_index())
    docs, tokens = heldout_size(exp, prep)
    assert docs == 150 and tokens > 20_000 and heldout_warning(exp, prep) is None
    # a bad file: one line naming it
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"txt": "oops"}\n')
    p.write_text(p.read_text().replace('heldout_from = "heldout_stories"', f'heldout_from = "{bad}"'))
    from curricula import CurriculumError
    with pytest.raises(CurriculumError, match="bad.jsonl:2: not a JSON object with a `text` field"):
        prepare(load_experiment(p))
