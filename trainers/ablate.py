"""The ablation runner: every (curriculum, seed) run of an experiment at the same token budget, as
tasks of the stages' executor; `plan` chooses between one run at a time with every core's thread and one run per
core with one thread each, whichever trains more tokens per second on this model size."""
from __future__ import annotations

from typing import Callable

import torch

from corpora.machine import available_cores
from trainers.config import Experiment
from trainers.heldout import heldout_warning
from trainers.model import Transformer
from trainers.prepare import load_prepared
from trainers.report import write_report
from trainers.train import (SPLIT_BELOW_FLOPS_PER_TOKEN, finished, model_config, prepare_experiment,
                            resolve_device, run_dir, run_fingerprint, train_run)


def _run_one(job: tuple[dict, str, int, int]) -> dict:
    """The task: one (curriculum, seed) run of the experiment (as JSON data: picklable anywhere)."""
    exp_data, curriculum, seed, threads = job
    exp = Experiment.model_validate(exp_data)
    return train_run(exp, curriculum, seed, threads=threads, prep=load_prepared(exp.out_dir))


def plan(exp: Experiment, workers: int | None = None) -> tuple[list[tuple[str, int]], int, int]:
    """(runs, runs at a time, torch threads per run). `workers` (or the experiment's `workers`)
    fixes the runs at a time; otherwise, on a GPU one at a time (each process would hold its own
    CUDA context and the runs would queue on the one device), on a CPU one per core for models under
    SPLIT_BELOW_FLOPS_PER_TOKEN (as measured faster there), else one at a time with all cores' threads."""
    jobs = [(c.name, s) for c in exp.curricula for s in exp.seeds]
    cores = available_cores()
    if not (workers or exp.workers):
        with torch.device("meta"):  # shapes only: no memory, no initialisation
            flops = Transformer(model_config(exp, exp.tokenizer.vocab_size)).flops_per_token()
        on_gpu = resolve_device(exp.train.device).type == "cuda"
        workers = cores if flops < SPLIT_BELOW_FLOPS_PER_TOKEN and not on_gpu else 1
    w = max(1, min(workers or exp.workers, len(jobs), cores))
    return jobs, w, max(1, cores // w)


def run_ablation(exp: Experiment, executor, workers: int | None = None, on_done: Callable[[dict], None] | None = None,
                 log: Callable[[str], None] = lambda s: None) -> dict:
    """Every (curriculum, seed) run not finished yet, through `executor.map` (the stages' executor:
    local processes, or Ray across machines when the experiment folder is on a shared file system),
    then the report. Finished runs (same fingerprint) are read back, not trained again."""
    prep = prepare_experiment(exp, log)
    if (warn := heldout_warning(exp, prep)) is not None:
        log(f"warning: {warn}")
    jobs, w, threads = plan(exp, workers)
    threads = exp.train.threads or threads  # an explicit [train] threads wins
    log(f"{len(jobs)} runs ({len(exp.curricula)} curricula x {len(exp.seeds)} seeds), {w} at a time, {threads} torch thread(s) each")
    data = exp.model_dump(mode="json")
    results, todo = [], []
    for c, s in jobs:
        done = finished(run_dir(exp, c, s), run_fingerprint(exp, exp.curriculum(c), s, prep.fingerprint))
        if done is None:
            todo.append((data, c, s, threads))
            continue
        results.append(done)
        if on_done:
            on_done(done)
    # one at a time runs in this process (no worker start-up: importing torch takes seconds); several
    # run in fresh processes (a fork of a process whose torch already started its threads can hang)
    for r in executor.map(_run_one, todo, processes=w, spawn=True):
        results.append(r)
        if on_done:
            on_done(r)
    rep = write_report(exp)
    rep["runs"] = sorted(results, key=lambda r: (r["curriculum"], r["seed"]))
    return rep
