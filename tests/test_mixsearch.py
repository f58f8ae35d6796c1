"""`tinyschool mixsearch`: planted domains, real proxy runs, a real regression, a real validation."""
import random

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from conftest import run_cli, run_report_queries

from corpora import Corpus
from tinyschool.executors.local import LocalExecutor

LETTERS = {"a": "abcdefgh", "b": "ijklmnop", "c": "qrstuvwx"}


def planted_corpus(root, letters: str, n: int, seed: int):
    """Stories of made-up words over their own letters: each domain has its own token distribution."""
    rng = random.Random(f"lexicon:{letters}")
    lexicon = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 5))) for _ in range(40)]
    rng = random.Random(seed)
    rows = [{"id": f"{letters[0]}{seed}-{i:04d}",
             "text": " ".join(lexicon[min(39, int(rng.paretovariate(1.2)) - 1)] for _ in range(rng.randint(20, 60))) + "."}
            for i in range(n)]
    Corpus(root).init("planted").write_shard("clean", "part-00000", pa.Table.from_pylist(rows))
    return root


EXP = """
name = "planted"
corpus = "{d}/target"                   # main: held-out text drawn like domain a, never trained on
corpora = {{ a = "{d}/a", b = "{d}/b", c = "{d}/c" }}
out = "{d}/runs"
workers = 1
[tokenizer]
vocab_size = 300
[train]
tokens = 2560
batch_size = 8
context = 32
threads = 1
eval_every = 10
log_every = 5
eval_docs = 16
[samples]
prompts = ["a"]
max_tokens = 2
[[curricula]]
name = "random"
[mixsearch]
target = "main"
domains = ["a", "b", "c"]
proxies = 12
preset = "tiny"
tokens = 2560
folds = 4
candidates = 5000
top = 50
[mixsearch.validate]
preset = "tiny"
seeds = [1, 2, 3]
"""


def _setup(tmp_path):
    for d, letters in LETTERS.items():
        planted_corpus(tmp_path / d, letters, 80, seed=1)
    planted_corpus(tmp_path / "target", LETTERS["a"], 80, seed=2)
    exp = tmp_path / "mix.toml"
    exp.write_text(EXP.format(d=tmp_path))
    return exp


@pytest.mark.slow
def test_search_finds_the_planted_domain_and_the_winner_beats_uniform(tmp_path):
    from trainers.config import load_experiment
    from trainers.mixsearch import NATURAL, UNIFORM, WINNER, run_mixsearch

    exp = load_experiment(_setup(tmp_path))
    res = run_mixsearch(exp, LocalExecutor(), workers=1)
    assert res.domains == ["a", "b", "c"]
    # the winner puts most weight on the domain that matches the target
    assert res.winner[0] > 0.6 and res.winner[0] == res.winner.max()
    assert res.chosen.rho > 0.8 and all(np.isfinite(f.mae) for f in res.fits)
    assert {f.name for f in res.fits} == {"linear", "gbm"}
    assert res.predicted[WINNER] < res.predicted[UNIFORM]
    v = res.validation
    assert v["verdicts"][UNIFORM][0] == "better"
    assert v["summary"][WINNER]["mean"] < v["summary"][UNIFORM]["mean"] and v["summary"][WINNER]["n"] == 3
    out = tmp_path / "runs"
    con = duckdb.connect()
    n, lo, hi = con.execute(f"SELECT count(*), min(weight_a + weight_b + weight_c), max(weight_a + weight_b + weight_c) "
                            f"FROM '{out}/mixture.parquet'").fetchone()
    assert n == 12 and lo == pytest.approx(1, abs=1e-5) and hi == pytest.approx(1, abs=1e-5)
    # the proxy with the most of domain a has a lower target than the one with the least
    best, worst = con.execute(f"SELECT arg_max(target, weight_a), arg_min(target, weight_a) FROM '{out}/mixture.parquet'").fetchone()
    assert best < worst
    report = (out / "report.md").read_text()
    assert "| linear |" in report and "| gbm |" in report and "Spearman rho" in report
    assert "weight_a" in run_report_queries(report)[0]  # the query the report suggests runs as written
    assert f"- **{WINNER}** vs {UNIFORM}: **better**" in report and f"vs {NATURAL}" in report
    png = (out / "predicted_vs_observed.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    # the winner is a ready curriculum: paste it into the experiment and it loads and trains
    toml = (out / "winner.toml").read_text()
    assert toml.startswith("[[curricula]]\nname = \"mixsearch-winner\"") and "main = 0.0000" in toml
    text = (tmp_path / "mix.toml").read_text().replace("[mixsearch]", toml + "[mixsearch]", 1)
    (tmp_path / "mix2.toml").write_text(text)
    cur = load_experiment(tmp_path / "mix2.toml").curriculum(WINNER)
    assert cur.mixture[0].weights["a"] == pytest.approx(float(res.winner[0]), abs=1e-4)
    # a probe target: BLiMP accuracy of a proxy (one paradigm per linguistics term), higher is better
    from conftest import SHARED
    from trainers.mixsearch import PROBES
    from trainers.targets import make_target
    if (SHARED / "data" / "blimp").is_dir():
        t = make_target("probe:blimp", ["main", "a", "b", "c"])
        proxy = next(iter(sorted(out.glob("proxies/proxy-000/seed*"))))
        acc = t.value(proxy, {})
        assert 0 < acc < 100 and t.loss(proxy, {}) == -acc and PROBES["blimp"] is not None
    # a second search finds every proxy and validation run finished and trains nothing
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/*/seed*/checkpoint.pt")}
    assert len(stamps) == 12 + 9
    again = run_mixsearch(exp, LocalExecutor(), workers=1)
    assert np.array_equal(again.winner, res.winner)
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/*/seed*/checkpoint.pt")} == stamps


@pytest.mark.slow
def test_bad_mixsearch_settings_are_one_line(tmp_path):
    from curricula import CurriculumError
    from trainers.config import ExperimentError, load_experiment
    from trainers.targets import make_target

    exp = _setup(tmp_path)
    text = exp.read_text()
    exp.write_text(text.replace('domains = ["a", "b", "c"]', 'domains = ["a", "d"]'))
    r = run_cli("mixsearch", exp, timeout=300)
    assert r.returncode == 2 and "no corpus named 'd'" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    exp.write_text(text.replace("top = 50", "top = 50\nbounds = { a = [0.6, 1.0], b = [0.5, 1.0] }"))
    with pytest.raises(ExperimentError, match="no mixture adds up to 1"):
        load_experiment(exp)
    exp.write_text(text.replace("top = 50", "top = 50\nbounds = { a = [0.6, 0.5] }"))
    with pytest.raises(ExperimentError, match=r"mixsearch.bounds.a: must be \[min, max\]"):
        load_experiment(exp)
    with pytest.raises(CurriculumError, match="probe:parsing: no such probe"):
        make_target("probe:parsing", ["main", "a"])
    with pytest.raises(CurriculumError, match="no corpus named 'z'"):
        make_target({"a": 1.0, "z": 1.0}, ["main", "a"])
    t = make_target({"a": 3.0, "main": 1.0}, ["main", "a"])
    assert t.corpora == {"a": 0.75, "main": 0.25}
    assert t.value(tmp_path, {"val_loss": 2.0, "val_loss/a": 4.0}) == pytest.approx(3.5)


def test_the_prior_respects_bounds_and_centre():
    from trainers.config import MixSearchConfig
    from trainers.mixsearch import make_prior

    ms = MixSearchConfig(concentration=50, center="natural", bounds={"a": [0.1, 0.5]})
    prior = make_prior(ms, ["a", "b", "c"], np.array([0.2, 0.3, 0.5]))
    w = prior.sample(np.random.default_rng(0), 4000)
    assert w.shape == (4000, 3) and np.allclose(w.sum(1), 1)
    assert (w[:, 0] >= 0.1).all() and (w[:, 0] <= 0.5).all()
    assert np.allclose(w.mean(0), [0.2, 0.3, 0.5], atol=0.02)  # centred on the natural shares
    # proxy i's mixture depends only on (seed, i): asking for more proxies keeps the first ones
    a = [prior.sample(np.random.default_rng([1, i, 7]), 1)[0] for i in range(5)]
    assert all(np.array_equal(x, prior.sample(np.random.default_rng([1, i, 7]), 1)[0]) for i, x in enumerate(a))
