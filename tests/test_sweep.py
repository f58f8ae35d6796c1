"""Sweep axes (preset, tokens, vocab_size, context) and the L(N, D) fit."""
import duckdb
import numpy as np
import pytest

from trainers.scaling import fit_scaling
from tinyschool.executors.local import LocalExecutor


def test_the_fit_recovers_planted_parameters_with_intervals_that_cover_them():
    rng = np.random.default_rng(0)
    N, D = (a.ravel() for a in np.meshgrid(np.logspace(4, 8, 6), np.logspace(6, 10, 6)))
    true = {"E": 1.7, "A": 400.0, "alpha": 0.34, "B": 410.0, "beta": 0.28}  # Chinchilla's published fit
    L = (true["E"] + true["A"] / N ** true["alpha"] + true["B"] / D ** true["beta"]) * np.exp(rng.normal(0, 0.002, N.size))
    f = fit_scaling(N, D, L, bootstrap=100, seed=1)
    assert f.E == pytest.approx(true["E"], rel=0.03)
    assert f.alpha == pytest.approx(true["alpha"], abs=0.01) and f.beta == pytest.approx(true["beta"], abs=0.01)
    assert f.A == pytest.approx(true["A"], rel=0.1) and f.B == pytest.approx(true["B"], rel=0.1)
    for p, v in true.items():  # bootstrap intervals hold the estimate and reach the truth within one width
        lo, hi = f.intervals[p]
        assert lo <= getattr(f, p) <= hi and 0 < hi - lo < 0.1 * abs(v), (p, lo, hi)
        assert lo - (hi - lo) <= v <= hi + (hi - lo), (p, lo, v, hi)
    assert f.predict(1e6, 1e8) == pytest.approx(1.7 + 400 / 1e6 ** 0.34 + 410 / 1e8 ** 0.28, rel=0.01)
    with pytest.raises(ValueError, match="at least 2 model sizes"):
        fit_scaling([1e5] * 6, D[:6], L[:6])


EXP = """
name = "sw"
corpus = "{d}/corpus"
out = "{d}/runs"
seeds = [1]
workers = 1
[tokenizer]
vocab_size = 300
[train]
tokens = 512
batch_size = 4
context = 32
threads = 1
eval_every = 4
log_every = 4
eval_docs = 16
[samples]
prompts = ["Once"]
max_tokens = 2
[[curricula]]
name = "random"
[sweep]
{axes}
"""


def _exp(tmp_path, axes):
    from test_ablate import make_corpus

    from trainers.config import load_experiment

    if not (tmp_path / "corpus").exists():
        make_corpus(tmp_path / "corpus", n=80)
    p = tmp_path / "sw.toml"
    p.write_text(EXP.format(d=tmp_path, axes=axes))
    return load_experiment(p)


@pytest.mark.slow
def test_a_size_by_data_sweep_runs_every_point_and_fits_the_law(tmp_path):
    from trainers.sweep import run_sweep, sweep_points

    exp = _exp(tmp_path, 'preset = ["tiny", "260k"]\ntokens = [512, 1024, 2048]\nbootstrap = 20')
    points = sweep_points(exp)
    assert [p[0] for p in points][:2] == ["preset-tiny_tokens-512", "preset-tiny_tokens-1024"] and len(points) == 6
    assert points[4][2].model.preset == "260k" and points[4][2].train.tokens == 1024
    rep = run_sweep(exp, LocalExecutor(), workers=1)
    assert rep["metric"] == "val_loss"  # one tokenizer: nats per token
    out = tmp_path / "runs"
    con = duckdb.connect()
    rows = con.execute(f"SELECT preset_name, train_tokens, non_embedding_params FROM '{out}/sweep.parquet' ORDER BY ALL").fetchall()
    assert len(rows) == 6 and {r[1] for r in rows} == {512, 1024, 2048}
    assert len({r[2] for r in rows}) == 2 and all(r[2] > 0 for r in rows)
    (g, (fit, _)), = rep["fits"].items()
    assert g.startswith("random") and all(np.isfinite(list(fit.as_dict().values())))
    report = (out / "report.md").read_text()
    assert "## Scaling law L(N, D)" in report and "| random (vocab" in report
    png = (out / "scaling.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    # points of one tokenizer share the prepared data: one tokenizer file, the same bytes everywhere
    toks = {(out / p[0] / "tokenizer.json").read_bytes() for p in points}
    assert len(toks) == 1


@pytest.mark.slow
def test_different_tokenizers_are_compared_in_bits_per_byte(tmp_path):
    from trainers.sweep import run_sweep, sweep_points

    exp = _exp(tmp_path, "vocab_size = [280, 320]\ncontext = [16, 32]")
    points = sweep_points(exp)
    assert [(p[2].tokenizer.vocab_size, p[2].train.context) for p in points] == [(280, 16), (280, 32), (320, 16), (320, 32)]
    rep = run_sweep(exp, LocalExecutor(), workers=1)
    assert rep["metric"] == "val_bpb" and not rep["fits"]
    rows = rep["rows"]
    assert all(r["bpb_source"] in ("trainer", "derived") for r in rows)
    # bits per byte = nats per token * tokens per byte / ln 2: a bigger vocabulary has fewer tokens per byte
    ratio = {r["vocab"]: r["val_bpb"] / r["val_loss"] for r in rows}
    assert ratio[320] < ratio[280]
    report = (tmp_path / "runs" / "report.md").read_text()
    assert "bits per byte" in report and "No scaling fit" in report
