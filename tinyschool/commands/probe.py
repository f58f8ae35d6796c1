"""`tinyschool probe MODEL`: minimal-pair accuracy (BLiMP or any good/bad JSONL) of a run or a Hugging Face model."""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import torch

from corpora.errors import UserError
from generators.local import cache_root, find_gguf, load_model
from tinyschool.ui import console, err_console, print_table, progress_bar
from trainers.probe import (
    PROBES,
    is_run_folder,
    load_hf_lm,
    load_run_lm,
    ngram_models,
    probe,
    published_rows,
    read_vocab_list,
    summarize,
    training_texts,
    untrained_run_lm,
    vocabulary,
    write_probes,
)
from trainers.probe_report import default_data
from trainers.probe_suites import ProbeError, load_suite

LEVEL_TITLES = {"field": "field", "linguistics_term": "linguistics term", "paradigm": "paradigm", "overall": "overall"}


def register(sub) -> None:
    p = sub.add_parser("probe", help="score a model on grammatical minimal pairs (BLiMP, or any JSONL of good/bad pairs)")
    p.add_argument("model", help="a run folder (runs/<exp>/<curriculum>/seed<N>), a Hugging Face causal-LM folder, "
                                 "or `embedded` (the embedded SmolLM2)")
    p.add_argument("--suite", default="blimp", help="blimp (a BLiMP folder) or pairs (a JSONL of {good, bad}); default blimp")
    p.add_argument("--data", help="the suite's folder or file (default for blimp: ../shared/data/blimp or data/blimp if there)")
    p.add_argument("--paradigms", help="comma-separated subset of paradigms")
    p.add_argument("--format", choices=["table", "json", "csv"], default="table")
    p.add_argument("--no-baselines", dest="baselines", action="store_false",
                   help="skip the untrained model and the n-gram models (run folders only)")
    p.add_argument("--vocab", help="word list (one per line, or a TSV with the word first) for the in-vocabulary "
                                   "column (default for a run: the words of its training split)")
    p.add_argument("--out", help="folder for probes.parquet (default: the model folder)")
    p.add_argument("--batch-size", type=int, help="sentences per forward pass (default 128 for runs, 32 for HF models)")
    p.add_argument("--threads", type=int, help="torch threads (default: every core this process may run on)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-compile", dest="compile", action="store_false",
                   help="never torch.compile a run's model (by default it is compiled for a suite of 2,000+ packed rows)")
    p.set_defaults(func=cmd_probe)


def _resolve_model(arg: str) -> Path:
    if arg == "embedded":  # the embedded SmolLM2, converted once from the wheel's GGUF into the cache
        converted = cache_root() / "models" / find_gguf().stem
        if not (converted / "config.json").exists():
            err_console.print("converting the embedded model once (about 30 s)")
            load_model()
        return converted
    p = Path(arg)
    if not p.is_dir():
        raise UserError(f"{p}: not a folder (give a run folder, a Hugging Face model folder or `embedded`)")
    return p


def cmd_probe(args) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    log = lambda s: err_console.print(s, highlight=False)  # noqa: E731
    try:
        data = args.data or default_data(args.suite)
        if data is None:
            raise UserError(f"--data is required for suite {args.suite!r} (no BLiMP folder at ../shared/data/blimp or data/blimp)")
        paradigms = [p.strip() for p in args.paradigms.split(",") if p.strip()] if args.paradigms else None
        suite = load_suite(args.suite, data, paradigms)
        folder = _resolve_model(args.model)
        vocab = read_vocab_list(args.vocab) if args.vocab else None
        ngrams, untrained = [], None
        if is_run_folder(folder):
            lm = load_run_lm(folder, args.device, args.batch_size or 128, compile=args.compile)
            texts = training_texts(folder)
            if texts is None:
                log(f"{folder.parent.parent}: no prepared.json (the experiment folder); no n-gram baselines or training vocabulary")
            else:
                vocab = vocab if vocab is not None else vocabulary(texts)
                if args.baselines:
                    log(f"n-gram baselines on {len(texts):,} training documents")
                    ngrams = ngram_models(texts)
            if args.baselines:
                untrained = untrained_run_lm(folder, args.device, args.batch_size or 128, compile=args.compile)
        elif (folder / "config.json").exists():
            lm = load_hf_lm(folder, args.device, args.batch_size or 32)
        else:
            raise UserError(f"{folder}: neither a run folder (checkpoint.pt, tokenizer.json) nor a Hugging Face model folder (config.json)")
        with progress_bar() as bar:
            for m in (lm, untrained):
                if m is not None:
                    task = bar.add_task(f"score {m.name}", total=None)
                    m.progress = lambda done, total, task=task: bar.update(task, completed=done, total=total)
            table = probe(suite, lm, untrained=untrained, ngrams=ngrams, vocab=vocab, log=log)
    except ProbeError as e:
        raise UserError(str(e)) from None
    out_dir = Path(args.out) if args.out else folder
    out_dir.mkdir(parents=True, exist_ok=True)
    path = write_probes(table, out_dir / PROBES)
    wide = _wide(summarize(table), published_rows(suite))
    if args.format == "json":
        print(json.dumps(_json(wide)))
    elif args.format == "csv":
        print(_csv(wide), end="")
    else:
        _print(wide, suite, vocab is not None)
        console.print(f"probes: {path}  ({table.num_rows:,} rows: one per scorer and pair)")
    return 0


def _wide(summary: list[dict], published: list[dict]) -> dict:
    """(level, group) -> {column: value}, the model's last probed step and every baseline side by side."""
    out: dict[tuple[str, str], dict] = {}
    for r in summary:
        cell = out.setdefault((r["level"], r["group"]), {"pairs": None})
        if r["scorer"] == "model":
            cell.update({"pairs": r["pairs"], "model": r["accuracy"], "per-token": r["accuracy_mean"],
                         "IV pairs": r["in_vocab_pairs"], "model IV": r["accuracy_in_vocab"]})
        else:
            cell[r["scorer"]] = r["accuracy"]
    for r in published:
        if (r["level"], r["group"]) in out:
            out[(r["level"], r["group"])][r["scorer"]] = r["accuracy"]
    return out


def _columns(wide: dict) -> list[str]:
    cols: list[str] = []
    for cell in wide.values():
        for k in cell:
            if k not in cols:
                cols.append(k)
    return cols


def _num(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(v, 2) if isinstance(v, float) else v


def _json(wide: dict) -> dict:
    para = {g: _num(c.get("model")) for (lvl, g), c in wide.items() if lvl == "paradigm"}
    overall = wide.get(("overall", "mean"), {})
    return {"accuracy": para, "mean": _num(overall.get("model")),
            "mean_per_token": _num(overall.get("per-token")),
            "in_vocab": {"pairs": overall.get("IV pairs"), "accuracy": _num(overall.get("model IV"))},
            "by_term": {g: _num(c.get("model")) for (lvl, g), c in wide.items() if lvl == "linguistics_term"},
            "by_field": {g: _num(c.get("model")) for (lvl, g), c in wide.items() if lvl == "field"},
            "baselines": {k: _num(v) for k, v in overall.items()
                          if k not in ("pairs", "model", "per-token", "IV pairs", "model IV")}}


def _csv(wide: dict) -> str:
    cols = _columns(wide)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["level", "group", *cols])
    for (lvl, g), c in wide.items():
        w.writerow([lvl, g, *["" if _num(c.get(k)) is None else _num(c.get(k)) for k in cols]])
    return buf.getvalue()


def _print(wide: dict, suite, has_vocab: bool) -> None:
    cols = [c for c in _columns(wide) if has_vocab or c not in ("IV pairs", "model IV")]
    fmt = lambda v: "" if _num(v) is None else (f"{v:.1f}" if isinstance(v, float) else str(v))  # noqa: E731
    for lvl in ("field", "linguistics_term", "paradigm", "overall"):
        rows = [(g, *[fmt(c.get(k)) for k in cols]) for (lv, g), c in wide.items() if lv == lvl]
        if rows and not (lvl == "paradigm" and len(rows) == 1 and lvl != "overall"):
            title = f"{suite.name}: accuracy (%) per {LEVEL_TITLES[lvl]}" if lvl != "overall" else \
                f"{suite.name}: mean over {len(suite.paradigms())} paradigms ({len(suite):,} pairs)"
            print_table(title, [LEVEL_TITLES[lvl], *cols], rows)
