"""`tinyschool train EXPERIMENT.toml` (one run) and `tinyschool ablate EXPERIMENT.toml` (curricula x seeds)."""
from __future__ import annotations

from tinyschool.stages.ablate import add_executor_args, guard, load, print_runs, run_ablation_stage, training_executor
from tinyschool.ui import console, progress_bar
from trainers.train import prepare_experiment, resolve_device, train_run


def register(sub) -> None:
    p = sub.add_parser("train", help="train one run of an experiment (a curriculum and a seed); resumes if interrupted")
    p.add_argument("experiment", help="experiment TOML file")
    p.add_argument("--curriculum", help="curriculum name (default: the first)")
    p.add_argument("--seed", type=int, help="seed (default: the experiment's first)")
    p.add_argument("--out", help="experiment folder (overrides `out`)")
    p.add_argument("--corpus", help="corpus folder (overrides `corpus`)")
    p.add_argument("--threads", type=int, help="torch threads (default: every core this process may run on)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("ablate", help="run every curriculum x seed of an experiment in parallel and write a report")
    p.add_argument("experiment", help="experiment TOML file")
    p.add_argument("--out", help="experiment folder (overrides `out`)")
    p.add_argument("--corpus", help="corpus folder (overrides `corpus`)")
    p.add_argument("--workers", type=int, help="runs at a time (default: the experiment's, else one per core for small models on a CPU, one with all threads for large ones and on a GPU)")
    add_executor_args(p)
    p.set_defaults(func=cmd_ablate)


def cmd_train(args) -> int:
    exp = load(args.experiment, out=args.out, corpus=args.corpus)
    guard(lambda: resolve_device(exp.train.device))  # before the data is prepared: a missing GPU is a quick one-line error
    prep = guard(lambda: prepare_experiment(exp, log=console.print))
    cur = exp.curriculum(args.curriculum) if args.curriculum else exp.curricula[0]
    with progress_bar() as progress:
        task = progress.add_task(f"train {cur.name} seed {args.seed if args.seed is not None else exp.seeds[0]}", total=None)
        res = guard(lambda: train_run(exp, cur.name, args.seed, threads=args.threads, prep=prep, log=console.print,
                                       progress=lambda s, t: progress.update(task, completed=s, total=t)))
    print_runs([res])
    console.print(f"run: {res['run']}  (metrics.parquet, tb/, checkpoint.pt, samples.md)")
    return 0


def cmd_ablate(args) -> int:
    exp = load(args.experiment, out=args.out, corpus=args.corpus)
    if args.executor == "local":  # a Ray cluster may have the GPU this machine lacks
        guard(lambda: resolve_device(exp.train.device))
    run_ablation_stage(exp, training_executor(args.executor, args.address, args.workers), args.workers)
    return 0
