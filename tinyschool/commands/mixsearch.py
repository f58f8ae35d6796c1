"""`tinyschool mixsearch EXPERIMENT.toml`: RegMix-style search for the mixture of the experiment's corpora."""
from __future__ import annotations

from corpora.errors import UserError
from tinyschool.stages.ablate import add_executor_args, guard, load, training_executor
from tinyschool.ui import console, print_table, progress_bar
from trainers.mixsearch import run_mixsearch


def register(sub) -> None:
    p = sub.add_parser("mixsearch", help="train proxy models on random mixtures, fit a regression, pick and validate the best mixture")
    p.add_argument("experiment", help="experiment TOML file with a [mixsearch] table")
    p.add_argument("--out", help="experiment folder (overrides `out`)")
    p.add_argument("--workers", type=int, help="runs at a time (default: the experiment's, else as `ablate` plans them: one per core for small models on a CPU, one at a time on a GPU)")
    p.add_argument("--proxies", type=int, help="number of proxy runs (overrides mixsearch.proxies)")
    p.add_argument("--no-validate", action="store_true", help="skip training the winner at the validation preset")
    add_executor_args(p)
    p.set_defaults(func=cmd_mixsearch)


def cmd_mixsearch(args) -> int:
    exp = load(args.experiment, out=args.out)
    if exp.mixsearch is None:
        raise UserError(f"{args.experiment}: no [mixsearch] table (target, proxies, preset, tokens...)")
    if args.proxies:
        if args.proxies < 4:
            raise UserError(f"--proxies must be at least 4 (got {args.proxies})")
        exp = exp.model_copy(update={"mixsearch": exp.mixsearch.model_copy(update={"proxies": args.proxies})})
    ms = exp.mixsearch
    v = ms.validate_
    executor = training_executor(args.executor, args.address, args.workers)
    with progress_bar() as progress, executor.session():
        ptask = progress.add_task("proxies", total=ms.proxies)
        vtask = progress.add_task("validation", total=3 * len(v.seeds) if v.enabled and not args.no_validate else 0)
        res = guard(lambda: run_mixsearch(exp, executor, args.workers, log=console.print,
                                           on_proxy=lambda r: progress.advance(ptask),
                                           on_validation=lambda r: progress.advance(vtask),
                                           validate=False if args.no_validate else None))
    print_table(f"mixsearch {exp.name}: regression, held-out ({ms.folds}-fold)", ["model", "Spearman rho", "MAE", "used"],
                [(f.name, round(f.rho, 3), round(f.mae, 4), "yes" if f is res.chosen else "") for f in res.fits])
    print_table(f"mixsearch {exp.name}: mixtures ({res.target_name})", ["mixture", *res.domains, "predicted"],
                [(n, *[round(float(x), 3) for x in w], round(res.predicted[n], 4))
                 for n, w in (("mixsearch-winner", res.winner), ("uniform", res.uniform), ("natural", res.natural))])
    if res.validation:
        s = res.validation["summary"]
        print_table(f"validation at preset {res.validation['preset']}: target over seeds",
                    ["mixture", "seeds", "mean", "95% CI", "winner vs this"],
                    [(n, x["n"], round(x["mean"], 4), f"[{x['lo']:.4f}, {x['hi']:.4f}]",
                      res.validation["verdicts"].get(n, ("", 0))[0]) for n, x in s.items()])
    console.print(f"report: {res.paths['report']}  (mixture.parquet, predicted_vs_observed.png, winner.toml)")
    return 0
