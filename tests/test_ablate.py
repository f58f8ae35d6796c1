"""`tinyschool ablate` and `tinyschool train` end to end, in real subprocesses."""
import random

import duckdb
import pyarrow as pa
import pytest
import torch

from conftest import run_cli, run_report_queries
from corpora import Corpus
from trainers.probe_report import default_data


def make_corpus(root, n=200, seed=0):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        k = rng.randint(1, 5)
        who = rng.choice(["Tom", "Lily", "Sam"])
        s = [f"Once upon a time, {who} had a {rng.choice(['dog', 'cat', 'frog'])}."]
        s += [rng.choice([f"{who} played.", "The sun was warm.", "They found a peculiar box."]) for _ in range(k)]
        rows.append({"id": f"d{i:04d}", "text": " ".join(s + ["The end."]), "word_count": 6 * k})
    Corpus(root).init("synthetic").write_shard("clean", "part-00000", pa.Table.from_pylist(rows))
    return root


EXP = """
name = "abl"
corpus = "{corpus}"
out = "{out}"
seeds = [1, 2, 3]
scorer = "{scorer}"
workers = 2
[tokenizer]
vocab_size = 300
[train]
tokens = 4000
batch_size = 4
context = 32
eval_every = 10
log_every = 5
[samples]
prompts = ["Once"]
max_tokens = 5
[evaluate]
count = 1
max_tokens = 12
[probe]
paradigms = ["anaphor_gender_agreement"]
[[curricula]]
name = "random"
[[curricula]]
name = "easy-to-hard"
order = "easy_to_hard"
pacing = "competence"
start = 0.2
"""


@pytest.mark.slow
@pytest.mark.skipif(default_data("blimp") is None, reason="needs BLiMP in ../shared/data/blimp or data/blimp (the report's BLiMP section)")
def test_ablate_writes_a_report_with_statistics_plot_and_verdict(tmp_path):
    make_corpus(tmp_path / "corpus")
    exp = tmp_path / "abl.toml"
    exp.write_text(EXP.format(corpus=tmp_path / "corpus", out=tmp_path / "runs", scorer="column:word_count"))
    r = run_cli("ablate", exp, timeout=600)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "runs"
    assert f"report: {out / 'report.md'}" in r.stdout.replace("\n", "")
    report = (out / "report.md").read_text()
    assert "| random | 3 |" in report and "| easy-to-hard | 3 |" in report
    assert "final 95% CI" in report and "tokens to reach target" in report
    assert any(line.startswith("- **easy-to-hard** vs random: **") and ("better" in line or "worse" in line or "no significant difference" in line)
               for line in report.splitlines())
    # every run was graded by the embedded judge; the report has its scores and its sanity check
    assert "## Judge scores" in report and "### Judge `local:SmolLM2-135M-Instruct`" in report
    assert "| random | 3 |" in report.split("## Judge scores")[1]  # 3 seeds x 1 completion
    assert "Sanity check (good, shuffled, repeated reference texts): " in report
    for c in ("random", "easy-to-hard"):
        for seed in (1, 2, 3):
            j = duckdb.connect().execute(f"SELECT count(*), count(*) FILTER (WHERE kind = 'completion') FROM '{out}/{c}/seed{seed}/judge.parquet'").fetchone()
            assert j == (10, 1)  # 1 completion + 9 reference texts
    png = (out / "loss.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    # BLiMP (one paradigm here) on every run, with the n-gram and untrained baselines, a table and a plot
    blimp = report.split("## BLiMP")[1]
    assert "| random | 3 |" in blimp and "| easy-to-hard | 3 |" in blimp and "5-gram (interpolated Kneser-Ney" in blimp
    assert (out / "blimp.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert duckdb.connect().execute(f"SELECT count(DISTINCT scorer) FROM '{out}/random/seed1/probes.parquet'").fetchone()[0] == 5
    loss_query, probe_query = run_report_queries(report)  # the queries the report suggests run as written
    assert "easy-to-hard" in loss_query and "5-gram" in probe_query and "unigram" in probe_query
    con = duckdb.connect()
    n, seeds = con.execute(f"SELECT count(*), count(DISTINCT seed) FROM '{out}/summary.parquet'").fetchone()
    assert (n, seeds) == (6, 3)
    # every run logged the same token budget
    budgets = con.execute(f"SELECT DISTINCT max(tokens) FROM '{out}/*/seed*/metrics.parquet' GROUP BY curriculum, seed").fetchall()
    assert len(budgets) == 1
    # a second call finds every run finished and only rewrites the report
    again = run_cli("ablate", exp, timeout=120)
    assert again.returncode == 0 and (out / "report.md").read_text() == report


@pytest.mark.slow
def test_the_main_job_sets_aside_runs_of_an_earlier_corpus(tmp_path):
    """`tinyschool run` makes its corpus anew (e.g. `--count 2000` after the default demo): the runs
    trained on the earlier corpus are moved aside, whole, and the ablation trains afresh; an
    unchanged corpus leaves them where they are (they resume or are found finished)."""
    import json

    from tinyschool.stages.ablate import set_aside_older_runs
    from trainers.config import load_experiment
    from trainers.prepare import data_fingerprint
    from trainers.train import run_fingerprint

    make_corpus(tmp_path / "corpus")
    p = tmp_path / "abl.toml"
    p.write_text(EXP.format(corpus=tmp_path / "corpus", out=tmp_path / "runs", scorer="length"))
    exp = load_experiment(p)
    assert set_aside_older_runs(exp) is None  # nothing trained yet
    out, old = tmp_path / "runs", data_fingerprint(exp)

    def started(data_fp):  # what a run writes when it starts, and prepare's marker
        (out / "random" / "seed1").mkdir(parents=True, exist_ok=True)
        fp = run_fingerprint(exp, exp.curriculum("random"), 1, data_fp)
        (out / "random" / "seed1" / "config.json").write_text(json.dumps({"fingerprint": fp}))
        (out / "prepared.json").write_text(json.dumps({"fingerprint": data_fp}))

    started(old)
    assert set_aside_older_runs(exp) is None and (out / "random" / "seed1" / "config.json").exists()  # same corpus
    Corpus(tmp_path / "corpus").write_shard("clean", "part-00001", pa.Table.from_pylist(
        [{"id": "new0001", "text": "Once upon a time, Sam had a new kite. The end.", "word_count": 6}]))  # more stories
    new = data_fingerprint(exp)
    assert new != old
    kept = set_aside_older_runs(exp)
    assert kept == tmp_path / "runs.previous" and (kept / "random" / "seed1" / "config.json").exists()
    assert not out.exists()
    # already re-prepared for the new corpus (a run that stopped with the old error), the runs still older
    started(old)
    (out / "prepared.json").write_text(json.dumps({"fingerprint": new}))
    assert set_aside_older_runs(exp) == tmp_path / "runs.previous-2" and kept.exists()  # nothing overwritten
    started(new)
    assert set_aside_older_runs(exp) is None


def test_a_missing_column_is_one_clear_line(tmp_path):
    make_corpus(tmp_path / "corpus", n=40)
    exp = tmp_path / "abl.toml"
    exp.write_text(EXP.format(corpus=tmp_path / "corpus", out=tmp_path / "runs", scorer="column:flesch_kincaid_grade"))
    r = run_cli("train", exp, timeout=120)
    assert r.returncode == 2
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "flesch_kincaid_grade" in err[0] and "word_count" in err[0]


@pytest.mark.slow
def test_bad_experiment_files_name_the_key(tmp_path):
    exp = tmp_path / "bad.toml"
    exp.write_text(EXP.format(corpus=tmp_path / "nowhere", out=tmp_path / "runs", scorer="length") + "\n[model]\npreset = 'tiny'\nwidth = 3\n")
    r = run_cli("ablate", exp, timeout=60)
    assert r.returncode == 2 and "model.width: unknown key" in r.stderr
    exp.write_text(EXP.format(corpus=tmp_path / "nowhere", out=tmp_path / "runs", scorer="length"))
    r = run_cli("train", exp, timeout=60)
    assert r.returncode == 2 and "nowhere" in r.stderr and "not a corpus" in r.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_a_cuda_device_without_cuda_is_one_clear_line(tmp_path):
    make_corpus(tmp_path / "corpus", n=40)
    exp = tmp_path / "abl.toml"
    exp.write_text(EXP.format(corpus=tmp_path / "corpus", out=tmp_path / "runs", scorer="length")
                   .replace("[train]", "[train]\ndevice = 'cuda'", 1))
    r = run_cli("ablate", exp, timeout=120)
    assert r.returncode == 2
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "train.device = 'cuda'" in err[0] and "no CUDA device" in err[0]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("checkpoint.pt"))


def test_report_statistics_and_verdicts():
    import math
    import statistics

    from scipy import stats

    from trainers.report import summarize, tokens_to_target, verdict

    vals = [2.0, 2.2, 2.1]
    s = summarize(vals)
    half = stats.t.ppf(0.975, 2) * statistics.stdev(vals) / math.sqrt(3)
    assert s["mean"] == pytest.approx(statistics.mean(vals)) and s["std"] == pytest.approx(statistics.stdev(vals))
    assert (s["lo"], s["hi"]) == (pytest.approx(s["mean"] - half), pytest.approx(s["mean"] + half))
    assert verdict([1.0, 1.01, 0.99], [2.0, 2.02, 1.98])[0] == "better"
    assert verdict([2.0, 2.02, 1.98], [1.0, 1.01, 0.99])[0] == "worse"
    v, p = verdict([1.0, 1.5, 2.0], [1.1, 1.6, 1.9])
    assert v == "no significant difference" and p > 0.05
    assert verdict([1.0], [2.0])[0].startswith("not enough seeds")
    assert tokens_to_target([(0, 5.0), (100, 3.0), (200, 2.0)], 2.5) == 200
    assert tokens_to_target([(0, 5.0), (100, 3.0)], 2.5) is None


def test_a_diverged_run_is_reported_and_left_out_of_the_statistics(tmp_path):
    import math
    import statistics

    import pyarrow.parquet as pq

    from trainers.config import Experiment
    from trainers.report import write_report

    exp = Experiment(name="div", corpus=str(tmp_path / "c"), out=str(tmp_path / "runs"), seeds=[1, 2, 3],
                     curricula=[{"name": "random"}, {"name": "easy-to-hard", "order": "easy_to_hard"}])
    finals = {("random", 1): 3.0, ("random", 2): 3.1, ("random", 3): 3.2,
              ("easy-to-hard", 1): 2.5, ("easy-to-hard", 2): math.nan, ("easy-to-hard", 3): 2.6}
    for (cur, seed), final in finals.items():
        rows = [{"curriculum": cur, "seed": seed, "step": step, "tokens": step * 100, "metric": "val_loss", "value": v}
                for step, v in ((0, 6.0), (10, 4.0), (20, final))]
        d = tmp_path / "runs" / cur / f"seed{seed}"
        d.mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows), d / "metrics.parquet")
    out = write_report(exp)
    report = out["report"].read_text()
    row = next(line for line in report.splitlines() if line.startswith("| easy-to-hard |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "2 (+1 diverged)"
    assert float(cells[2]) == pytest.approx(statistics.mean([2.5, 2.6]), abs=1e-4)  # the mean of the finite runs
    assert float(cells[3]) == pytest.approx(statistics.stdev([2.5, 2.6]), abs=1e-4)
    assert "nan" not in report.lower().replace("nan or infinite", "")
    assert "**Diverged**" in report and "easy-to-hard seed 2 (at 2,000 tokens)" in report
    assert "validation on 10% of the corpus's documents held out, at most 256 evaluated" in report
    fixed = write_report(exp.model_copy(update={"heldout_from": "heldout_stories"}))["report"].read_text()
    assert "validation on the fixed held-out set `heldout_stories` (every corpus document trains)" in fixed
    assert "10%" not in fixed
    assert out["verdicts"]["easy-to-hard"] == "better"
    summary = {(r["curriculum"], r["seed"]): r for r in pq.read_table(out["report"].parent / "summary.parquet").to_pylist()}
    assert summary[("easy-to-hard", 2)]["diverged"] and summary[("easy-to-hard", 2)]["diverged_at_tokens"] == 2000
    assert not summary[("random", 1)]["diverged"]
    # the query the report suggests runs as written (the duckdb command-line tool is not needed)
    assert "easy-to-hard" in run_report_queries(report)[0]


def test_plan_splits_small_models_over_the_cores_and_gives_large_ones_all_threads(monkeypatch):
    from trainers.ablate import plan
    from trainers.config import Experiment

    monkeypatch.setattr("trainers.ablate.available_cores", lambda: 4)
    base = {"name": "p", "corpus": "c", "seeds": [1, 2, 3], "curricula": [{"name": "a"}, {"name": "b"}]}
    tiny = Experiment.model_validate({**base, "model": {"preset": "tiny"}})
    mid = Experiment.model_validate({**base, "model": {"preset": "7m"}, "tokenizer": {"vocab_size": 4096}})
    big = Experiment.model_validate({**base, "model": {"preset": "15m"}, "tokenizer": {"vocab_size": 32000}})
    assert plan(tiny)[1:] == (4, 1)  # 4 runs at once, 1 thread each
    assert plan(mid)[1:] == (4, 1)  # measured faster split too
    assert plan(big)[1:] == (1, 4)  # one at a time, 4 threads
    assert plan(big, workers=2)[1:] == (2, 2)  # an explicit choice wins
    assert plan(Experiment.model_validate({**base, "model": {"preset": "7m"}, "workers": 4}))[1:] == (4, 1)
    assert len(plan(tiny)[0]) == 6
    # on a GPU (no GPU here: the device as `auto` would resolve it on a machine with one) one run at a
    # time, whatever the size, unless asked otherwise
    monkeypatch.setattr("trainers.ablate.resolve_device", lambda name: torch.device("cuda" if name == "auto" else name))
    assert plan(tiny)[1:] == (1, 4)
    assert plan(tiny, workers=2)[1:] == (2, 2)
    cpu = Experiment.model_validate({**base, "model": {"preset": "tiny"}, "train": {"device": "cpu"}})
    assert plan(cpu)[1:] == (4, 1)
