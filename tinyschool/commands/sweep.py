"""`tinyschool sweep EXPERIMENT.toml`: the curricula x seeds grid at every point of the [sweep] axes."""
from __future__ import annotations

from corpora.errors import UserError
from tinyschool.stages.ablate import add_executor_args, guard, load, training_executor
from tinyschool.ui import console, print_table, progress_bar
from trainers.sweep import run_sweep, sweep_points


def register(sub) -> None:
    p = sub.add_parser("sweep", help="run the ablation at every combination of the [sweep] axes (preset, tokens, vocab_size, "
                                     "context) and fit the scaling law")
    p.add_argument("experiment", help="experiment TOML file with a [sweep] table")
    p.add_argument("--out", help="experiment folder (overrides `out`)")
    p.add_argument("--workers", type=int, help="runs at a time (default: the experiment's, else as `ablate` plans them: one per core for small models on a CPU, one at a time on a GPU)")
    add_executor_args(p)
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args) -> int:
    exp = load(args.experiment, out=args.out)
    if exp.sweep is None:
        raise UserError(f"{args.experiment}: no [sweep] table (preset, tokens, vocab_size, context)")
    total = len(sweep_points(exp)) * len(exp.curricula) * len(exp.seeds)
    executor = training_executor(args.executor, args.address, args.workers)
    with progress_bar() as progress, executor.session():
        task = progress.add_task(f"sweep {exp.name}", total=total)
        rep = guard(lambda: run_sweep(exp, executor, args.workers, on_done=lambda r: progress.advance(task), log=console.print))
    m = rep["metric"]
    print_table(f"sweep {exp.name}: final {m}", ["point", "curriculum", "seed", "non-embedding params", "tokens", m],
                [(r["point"], r["curriculum"], r["seed"], r["non_embedding_params"], r["train_tokens"], round(r[m], 4))
                 for r in rep["rows"]])
    for g, (f, _) in rep["fits"].items():
        console.print(f"L(N, D) for {g}: E={f.E:.4g} A={f.A:.4g} alpha={f.alpha:.3f} B={f.B:.4g} beta={f.beta:.3f}")
    console.print(f"report: {rep['report']}")
    return 0
