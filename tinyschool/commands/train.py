"""`tinyschool train EXPERIMENT.toml` (one run) and `tinyschool ablate EXPERIMENT.toml` (curricula x seeds)."""
from __future__ import annotations

from corpora.errors import UserError
from tinyschool.ui import console, print_table, progress_bar


def register(sub) -> None:
    p = sub.add_parser("train", help="train one run of an experiment (a curriculum and a seed); resumes if interrupted")
    p.add_argument("experiment", help="experiment TOML file")
    p.add_argument("--curriculum", help="curriculum name (default: the first)")
    p.add_argument("--seed", type=int, help="seed (default: the experiment's first)")
    p.add_argument("--out", help="experiment folder (overrides `out`)")
    p.add_argument("--corpus", help="corpus folder (overrides `corpus`)")
    p.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("ablate", help="run every curriculum x seed of an experiment in parallel and write a report")
    p.add_argument("experiment", help="experiment TOML file")
    p.add_argument("--out", help="experiment folder (overrides `out`)")
    p.add_argument("--corpus", help="corpus folder (overrides `corpus`)")
    p.add_argument("--workers", type=int, help="runs at a time (default: the experiment's, else one per core)")
    p.set_defaults(func=cmd_ablate)


def _load(path, **overrides):
    from trainers.config import ExperimentError, load_experiment

    try:
        return load_experiment(path, overrides)
    except ExperimentError as e:
        raise UserError(str(e)) from None


def _guard(fn):
    """Errors of the data or the configuration become one line and a non-zero exit."""
    from curricula import CurriculumError
    from trainers.train import TrainError

    try:
        return fn()
    except (CurriculumError, TrainError, FileNotFoundError) as e:
        raise UserError(str(e)) from None


def cmd_train(args) -> int:
    from trainers.prepare import prepare
    from trainers.train import train_run

    exp = _load(args.experiment, out=args.out, corpus=args.corpus)
    prep = _guard(lambda: prepare(exp, log=console.print))
    cur = exp.curriculum(args.curriculum) if args.curriculum else exp.curricula[0]
    with progress_bar() as progress:
        task = progress.add_task(f"train {cur.name} seed {args.seed if args.seed is not None else exp.seeds[0]}", total=None)
        res = _guard(lambda: train_run(exp, cur.name, args.seed, threads=args.threads, prep=prep, log=console.print,
                                       progress=lambda s, t: progress.update(task, completed=s, total=t)))
    _print_runs([res])
    console.print(f"run: {res['run']}  (metrics.parquet, tb/, checkpoint.pt, samples.md)")
    return 0


def _print_runs(results) -> None:
    f = lambda v: "" if v is None else v  # noqa: E731
    print_table("runs", ["curriculum", "seed", "params", "steps", "tokens", "final val loss", "best val loss", "tokens/s"],
                [(r["curriculum"], r["seed"], r["params"], r["steps"], r["tokens"], f(r["final_val_loss"]),
                  f(r["best_val_loss"]), f(r["tokens_per_s"])) for r in results])


def run_ablation_cli(exp, workers=None) -> dict:
    from trainers.ablate import plan, run_ablation

    jobs, _, _ = plan(exp, workers)
    with progress_bar() as progress:
        task = progress.add_task(f"ablate {exp.name}", total=len(jobs))
        rep = _guard(lambda: run_ablation(exp, workers, log=console.print,
                                          on_done=lambda r: progress.advance(task)))
    _print_runs(rep["runs"])
    print_table(f"ablation {exp.name}: validation loss over seeds",
                ["curriculum", "seeds", "final mean", "final std", "final 95% CI", "best mean", "best std", "best 95% CI",
                 "tokens to target", "verdict vs " + exp.baseline],
                [(*r, rep["verdicts"][r[0]]) for r in rep["rows"]])
    if exp.evaluate.enabled:
        judge_ablation(exp, rep)
    console.print(f"report: {rep['report']}  (plot: {rep['plot']})")
    return rep


def judge_ablation(exp, rep) -> None:
    """Grade every run's completions with the configured judges and add the scores to report.md."""
    import pyarrow.parquet as pq

    from generators.cache import RequestCache
    from generators.config import BackendConfig
    from tinyschool.evaluate import BEGINNINGS, EvalConfig, JudgeClient, evaluate_run, judge_label
    from trainers.judge import judge_section
    from trainers.train import run_dir

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


def cmd_ablate(args) -> int:
    exp = _load(args.experiment, out=args.out, corpus=args.corpus)
    run_ablation_cli(exp, args.workers)
    return 0
