"""Training runs through the executor: an ablation on Ray (a local cluster started here) trains the
same runs as on this machine, number for number, and finished runs are not trained again."""
from __future__ import annotations

import duckdb
import pytest

ray = pytest.importorskip("ray")

from test_ablate import make_corpus  # noqa: E402
from tinyschool.executors import ExecutorConfig  # noqa: E402
from tinyschool.executors.local import LocalExecutor  # noqa: E402
from tinyschool.executors.ray_executor import RayExecutor  # noqa: E402
from trainers.ablate import run_ablation  # noqa: E402
from trainers.config import load_experiment  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]  # one Ray cluster at a time: the group runs on one test worker

EXP = """
name = "rt"
corpus = "{corpus}"
out = "{out}"
seeds = [1, 2]
scorer = "column:word_count"
[tokenizer]
vocab_size = 300
[train]
tokens = 3000
batch_size = 4
context = 32
eval_every = 10
log_every = 5
[samples]
prompts = ["Once"]
max_tokens = 5
[[curricula]]
name = "easy-to-hard"
order = "easy_to_hard"
pacing = "competence"
start = 0.2
"""


def _curves(out):
    con = duckdb.connect()
    return con.execute(f"SELECT curriculum, seed, metric, step, value FROM '{out}/*/seed*/metrics.parquet' "
                       "WHERE metric IN ('train_loss', 'val_loss', 'val_bpb') ORDER BY ALL").fetchall()


def test_an_ablation_on_ray_trains_the_same_runs_as_locally(tmp_path):
    make_corpus(tmp_path / "corpus")
    exps = {}
    for kind in ("local", "ray"):
        p = tmp_path / f"{kind}.toml"
        p.write_text(EXP.format(corpus=tmp_path / "corpus", out=tmp_path / kind))
        exps[kind] = load_experiment(p)
    local = run_ablation(exps["local"], LocalExecutor(ExecutorConfig(num_workers=2)), workers=2)
    ex = RayExecutor(ExecutorConfig(kind="ray", num_workers=2))
    with ex.session():
        on_ray = run_ablation(exps["ray"], ex, workers=2)
        a, b = _curves(tmp_path / "local"), _curves(tmp_path / "ray")
        assert len(a) > 10 and a == b  # the same loss curves, number for number (one thread per run both ways)
        assert [r["final_val_loss"] for r in local["runs"]] == [r["final_val_loss"] for r in on_ray["runs"]]
        # finished runs are read back, not trained again: nothing reaches the executor
        seen = []
        spy = type("Spy", (), {"map": lambda self, fn, xs, **kw: seen.extend(xs) or iter(())})()
        again = run_ablation(exps["ray"], spy, workers=2)
        assert seen == [] and [r["final_val_loss"] for r in again["runs"]] == [r["final_val_loss"] for r in on_ray["runs"]]
