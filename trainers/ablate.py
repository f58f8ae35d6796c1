"""The ablation runner: every (curriculum, seed) run of an experiment at the same token budget,
in parallel over the cores (a process pool; torch threads per worker = cores / workers)."""
from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Callable

from trainers.config import Experiment
from trainers.prepare import prepare
from trainers.report import write_report
from trainers.train import _fingerprint, finished, run_dir


def _run_one(exp_data: dict, curriculum: str, seed: int, threads: int) -> dict:
    from trainers.prepare import load_prepared
    from trainers.train import train_run

    exp = Experiment.model_validate(exp_data)
    return train_run(exp, curriculum, seed, threads=threads, prep=load_prepared(exp.out_dir))


def plan(exp: Experiment, workers: int | None = None) -> tuple[list[tuple[str, int]], int, int]:
    jobs = [(c.name, s) for c in exp.curricula for s in exp.seeds]
    cores = os.cpu_count() or 1
    w = max(1, min(workers or exp.workers or cores, len(jobs), cores))
    return jobs, w, max(1, cores // w)


def run_ablation(exp: Experiment, workers: int | None = None, on_done: Callable[[dict], None] | None = None,
                 log: Callable[[str], None] = lambda s: None) -> dict:
    prep = prepare(exp, log)
    jobs, w, threads = plan(exp, workers)
    threads = exp.train.threads or threads  # an explicit [train] threads wins
    log(f"{len(jobs)} runs ({len(exp.curricula)} curricula x {len(exp.seeds)} seeds), {w} at a time, {threads} torch thread(s) each")
    data = exp.model_dump(mode="json")
    results, todo = [], []
    for c, s in jobs:  # finished runs are not started again
        done = finished(run_dir(exp, c, s), _fingerprint(exp, exp.curriculum(c), s, prep.fingerprint))
        if done is not None:
            results.append(done)
            if on_done:
                on_done(done)
        else:
            todo.append((c, s))
    if todo and min(w, len(todo)) == 1:  # one at a time: in this process, no worker start-up (importing torch takes seconds)
        for c, s in todo:
            r = _run_one(data, c, s, threads)
            results.append(r)
            if on_done:
                on_done(r)
    elif todo:
        w = min(w, len(todo))
        with ProcessPoolExecutor(max_workers=w, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(_run_one, data, c, s, threads) for c, s in todo]
            for f in as_completed(futures):
                r = f.result()
                results.append(r)
                if on_done:
                    on_done(r)
    rep = write_report(exp)
    rep["runs"] = sorted(results, key=lambda r: (r["curriculum"], r["seed"]))
    return rep
