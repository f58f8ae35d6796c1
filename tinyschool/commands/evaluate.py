"""`tinyschool evaluate RUN`: grade a trained run's completions with an LLM judge.
`tinyschool eval-prompts CORPUS`: sample more story beginnings from a corpus's held-out documents."""
from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from corpora.errors import UserError, read_toml, validation_message
from generators.config import BackendConfig
from tinyschool.ui import console, print_table


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="grade a trained run's story completions with an LLM judge")
    p.add_argument("run", help="a run folder (runs/<experiment>/<curriculum>/seed<N>)")
    p.add_argument("--judges", help="TOML file with [[judges]] tables (backend settings); default: the embedded model")
    p.add_argument("--beginnings", help="JSONL of story beginnings (id, text); default prompts/eval/beginnings.jsonl")
    p.add_argument("--count", type=int, default=8, help="beginnings to complete (default 8)")
    p.add_argument("--temperature", type=float, help="sampling temperature of the trained model (default: the experiment's)")
    p.add_argument("--max-tokens", type=int, default=80)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("eval-prompts", help="write story beginnings taken from a corpus's held-out documents")
    p.add_argument("corpus")
    p.add_argument("--count", type=int, default=50)
    p.add_argument("--heldout", type=float, default=0.1, help="held-out fraction, as in the experiment (default 0.1)")
    p.add_argument("--out", required=True, help="JSONL file to write")
    p.set_defaults(func=cmd_eval_prompts)


def load_judges(path: str | None):
    if not path:
        return [BackendConfig(name="local", batch_size=16)]
    p = Path(path)
    data = read_toml(p, "judges")
    judges = []
    for i, j in enumerate(data.get("judges", [])):
        try:
            judges.append(BackendConfig.model_validate(j))
        except ValidationError as e:
            raise UserError(f"{p}: judges[{i}].{validation_message(e)}") from None
    if not judges:
        raise UserError(f"{p}: no [[judges]] tables")
    return judges


def eval_config_from(args, run: Path):
    from tinyschool.evaluate import BEGINNINGS, EvalConfig

    temperature = args.temperature
    if temperature is None:
        cfg = run / "config.json"
        try:
            temperature = json.loads(cfg.read_text()).get("samples", {}).get("temperature", 0.8)
        except (OSError, ValueError, AttributeError):
            temperature = 0.8
    return EvalConfig(judges=load_judges(args.judges), beginnings=args.beginnings or str(BEGINNINGS), count=args.count,
                      temperature=temperature, max_tokens=args.max_tokens, seed=args.seed)


def print_judge_summary(path: Path) -> None:
    import pyarrow.parquet as pq

    from trainers.judge import CRITERIA, judge_section

    run = path.parent.name
    rows = [{**r, "curriculum": run, "seed": 0} for r in pq.read_table(path).to_pylist()]
    md, table_rows = judge_section(rows, [run])
    print_table(f"judge scores {path} (1-10, mean [95% CI])", ["judge", "run", "valid", *CRITERIA, "overall"], table_rows)
    for line in md:
        if line.startswith("Sanity check"):
            console.print(line, style="yellow" if "FLAGGED" in line or "not enough" in line else None)


def cmd_evaluate(args) -> int:
    from tinyschool.evaluate import evaluate_run

    run = Path(args.run)
    if not (run / "checkpoint.pt").exists():
        raise UserError(f"{run}: not a trained run (no checkpoint.pt); train it with `tinyschool train` or `ablate`")
    ecfg = eval_config_from(args, run)
    try:
        with console.status("evaluating"):
            path = evaluate_run(run, ecfg, log=console.print)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None
    print_judge_summary(path)
    console.print(f"scores, judge prompts and raw answers: {path}")
    return 0


def cmd_eval_prompts(args) -> int:
    from trainers.judge import beginnings_from_corpus

    try:
        rows = beginnings_from_corpus(args.corpus, args.count, args.heldout)
    except Exception as e:  # CurriculumError, CorpusError: one line
        raise UserError(str(e)) from None
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    console.print(f"wrote {len(rows)} beginnings from held-out documents of {args.corpus} to {out}")
    return 0
