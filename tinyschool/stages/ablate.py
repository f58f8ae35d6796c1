"""The ablation stage: every (curriculum, seed) run of an experiment through the executor, the report,
BLiMP (or the configured probe suite) on every run and the judge; also the main job's last stage,
a short ablation on the corpus it just made."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

import prompts
from corpora import Corpus
from corpora.errors import UserError
from corpora.machine import available_cores
from curricula import CurriculumError
from generators.cache import RequestCache
from generators.config import BackendConfig
from tinyschool.evaluate import BEGINNINGS, EvalConfig, JudgeClient, evaluate_run, judge_label
from tinyschool.executors import ExecutorConfig, make_executor
from tinyschool.ui import console, print_table, progress_bar
from trainers.ablate import run_ablation
from trainers.config import ExperimentError, load_experiment
from trainers.heldout import heldout_warning
from trainers.judge import judge_section
from trainers.prepare import data_fingerprint, load_prepared
from trainers.probe_report import add_to_report, blimp_section, probe_ablation
from trainers.probe_suites import ProbeError
from trainers.train import TrainError, run_dir, run_fingerprint


def ablate_stage(recipe, corpus: Corpus, args: Any = None):
    """Runs the recipe's `experiment` (skipped when it has none) with the corpus replaced by the
    recipe's own; the runs go to the experiment's `out`, or inside the corpus folder when the
    corpus was redirected with --out."""
    if not getattr(recipe, "experiment", None):
        console.print("ablate: the recipe names no experiment; skipped")
        return None
    exp = load_experiment(prompts.resolve("experiments", recipe.experiment, ".toml"), {"corpus": str(corpus.root)})
    if getattr(args, "out", None):
        exp = exp.model_copy(update={"out": str(Path(args.out) / "runs" / exp.name)})
    if (kept := set_aside_older_runs(exp)) is not None:
        console.print(f"ablate: the runs in {exp.out_dir} were trained on an earlier corpus or other settings; they are "
                      f"kept in {kept}, and the ablation trains afresh")
    rep = run_ablation_stage(exp, training_executor())
    console.print(f"[bold]ablation report: {rep['report']}[/bold]")
    return rep


def set_aside_older_runs(exp) -> Path | None:
    """The main job makes its corpus anew (more stories, new cleaning): runs it started on an earlier
    state of the corpus (or with other settings) are moved aside, whole and not deleted, to
    `<out>.previous` (`.previous-2`, ...), so that the ablation trains on the corpus as it is now.
    A run's fingerprint (config.json, written when it starts) holds its data's. Returns where they
    went (None: nothing to move)."""
    out, data_fp = exp.out_dir, data_fingerprint(exp)

    def older(cur, seed) -> bool:
        cfg = run_dir(exp, cur.name, seed) / "config.json"
        return cfg.exists() and json.loads(cfg.read_text()).get("fingerprint") != run_fingerprint(exp, cur, seed, data_fp)

    if not any(older(cur, seed) for cur in exp.curricula for seed in exp.seeds):
        return None
    dest, n = out.with_name(f"{out.name}.previous"), 1
    while dest.exists():
        n += 1
        dest = out.with_name(f"{out.name}.previous-{n}")
    out.rename(dest)
    return dest


def add_executor_args(p) -> None:
    """--executor/--address of the commands that train many runs (ablate, mixsearch, sweep)."""
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="where the runs train: this machine (processes) or a Ray cluster (the experiment folder on a shared file system)")
    p.add_argument("--address", help='Ray cluster to join ("auto", "head:6379"); none: a local Ray started for the command')


def training_executor(kind: str = "local", address: str | None = None, workers: int | None = None):
    """The executor training runs go through: local processes (as many as cores; `plan` says how many
    run at once), or Ray with `workers` runs in flight (default 2)."""
    if kind == "local":
        return make_executor(ExecutorConfig(num_workers=available_cores()))
    return make_executor(ExecutorConfig(kind="ray", address=address, num_workers=workers or 2))


def load(path, **overrides):
    """An experiment file, its errors as one line."""
    try:
        return load_experiment(path, overrides)
    except ExperimentError as e:
        raise UserError(str(e)) from None


def guard(fn):
    """Errors of the data or the configuration become one line and a non-zero exit."""
    try:
        return fn()
    except (CurriculumError, TrainError, FileNotFoundError) as e:
        raise UserError(str(e)) from None


def print_runs(results) -> None:
    f = lambda v: "" if v is None else v  # noqa: E731
    print_table("runs", ["curriculum", "seed", "params", "steps", "tokens", "final val loss", "best val loss", "tokens/s"],
                [(r["curriculum"], r["seed"], r["params"], r["steps"], r["tokens"], f(r["final_val_loss"]),
                  f(r["best_val_loss"]), f(r["tokens_per_s"])) for r in results])


def run_ablation_stage(exp, executor, workers=None) -> dict:
    """The ablation with a progress bar and the summary tables, then the probes and the judge (when
    configured), each adding its section to report.md."""
    with progress_bar() as progress, executor.session():
        task = progress.add_task(f"ablate {exp.name}", total=len(exp.curricula) * len(exp.seeds))  # plan()'s runs
        rep = guard(lambda: run_ablation(exp, executor, workers, log=console.print,
                                          on_done=lambda r: progress.advance(task)))
    print_runs(rep["runs"])
    print_table(f"ablation {exp.name}: validation loss over seeds",
                ["curriculum", "seeds", "final mean", "final std", "final 95% CI", "best mean", "best std", "best 95% CI",
                 "tokens to target", "verdict vs " + exp.baseline],
                [(*r, rep["verdicts"][r[0]]) for r in rep["rows"]])
    probe_ablation_stage(exp, rep)
    if exp.evaluate.enabled:
        judge_ablation(exp, rep)
    console.print(f"report: {rep['report']}  (plot: {rep['plot']})")
    return rep


def probe_ablation_stage(exp, rep) -> None:
    """BLiMP (or the configured suite) on every run, a section in report.md, the held-out warning in red."""
    try:
        suite = guard(lambda: probe_ablation(exp, rep["runs"], log=console.print))
    except ProbeError as e:
        raise UserError(f"[probe] {e}") from None
    md, rows = blimp_section(exp, suite, rep["runs"])
    add_to_report(rep["report"], md, heldout_warning(exp, load_prepared(exp.out_dir)))
    if rows:
        print_table(f"ablation {exp.name}: BLiMP accuracy (%) over seeds",
                    ["curriculum", "seeds", "mean", "std", "95% CI", "verdict vs " + exp.baseline, "in-vocabulary",
                     "per-token", "val bpb"], rows)


def judge_ablation(exp, rep) -> None:
    """Grade every run's completions with the configured judges and add the scores to report.md."""
    ev = exp.evaluate
    try:
        judges = [BackendConfig.model_validate(j) for j in ev.judges] or [BackendConfig(name="local", batch_size=16)]
    except Exception as e:  # pydantic ValidationError: one line
        raise UserError(f"experiment {exp.name}: evaluate.judges: {str(e).splitlines()[0]}") from None
    ecfg = EvalConfig(judges=judges, beginnings=ev.beginnings or str(BEGINNINGS), count=ev.count,
                      temperature=ev.temperature if ev.temperature is not None else exp.samples.temperature,
                      max_tokens=ev.max_tokens, seed=exp.samples.seed)
    cache = RequestCache()
    clients = {judge_label(j): JudgeClient(j, ecfg, cache) for j in judges}
    rows = []
    try:
        with progress_bar() as progress:
            task = progress.add_task("judge", total=len(rep["runs"]))
            for r in rep["runs"]:
                path = evaluate_run(run_dir(exp, r["curriculum"], r["seed"]), ecfg, judges=clients)
                rows += [{**x, "curriculum": r["curriculum"], "seed": r["seed"]} for x in pq.read_table(path).to_pylist()]
                progress.advance(task)
    finally:
        for c in clients.values():
            c.close()
        cache.close()
    md, table_rows = judge_section(rows, [c.name for c in exp.curricula], exp.baseline)
    report = rep["report"]
    text = report.read_text()
    marker = "## Judge scores"
    if marker in text:
        text = text[: text.index(marker)].rstrip() + "\n"
    report.write_text(text.rstrip() + "\n\n" + "\n".join(md))
    print_table(f"ablation {exp.name}: judge scores (1-10, mean [95% CI])",
                ["judge", "curriculum", "valid", "grammar", "creativity", "consistency", "plot", "overall"], table_rows)
    for line in md:
        if line.startswith("Sanity check"):
            console.print(line, style="yellow" if "FLAGGED" in line or "not enough" in line else None)
