"""The `tinyschool` command. Each subcommand is defined by a module in tinyschool/commands with
`register(sub)`; only the module of the command being run is imported (some load torch or spaCy),
the others appear in `--help` with the line below."""
from __future__ import annotations

import argparse
import importlib
import sys

from rich.markup import escape

from corpora.errors import UserError
from corpora.store import CorpusError
from generators.base import BackendError
from tinyschool import __version__
from tinyschool.quiet import quiet_dependencies
from tinyschool.ui import err_console

# command -> (module whose `register` defines it, one line of help); a new command is a module plus a line here
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("tinyschool.commands.run", "run the main job of a recipe: generate, clean, summarize, ..."),
    "generate": ("tinyschool.commands.generate", "generate the raw corpus of a recipe (resumable)"),
    "annotate": ("tinyschool.commands.annotate", "annotate, dedup and decontaminate the raw corpus into `annotated` and `clean`"),
    "vocab": ("tinyschool.commands.vocab", "vocabulary tools"),
    "query": ("tinyschool.commands.query", "run read-only SQL over the views raw, annotated, clean"),
    "stats": ("tinyschool.commands.query", "docs, tokens, errors, top openings and word-count quantiles"),
    "verify": ("tinyschool.commands.query", "check every shard of a corpus against its manifest"),
    "import": ("tinyschool.commands.io", "import existing text (txt, JSONL, Parquet, Arrow; gz/zst) into a new corpus"),
    "export": ("tinyschool.commands.io", "export a corpus as a Hugging Face dataset folder, JSON lines or TinyStories text"),
    "train": ("tinyschool.commands.train", "train one run of an experiment (a curriculum and a seed); resumes if interrupted"),
    "ablate": ("tinyschool.commands.train", "run every curriculum x seed of an experiment in parallel and write a report"),
    "evaluate": ("tinyschool.commands.evaluate", "grade a trained run's story completions with an LLM judge"),
    "eval-prompts": ("tinyschool.commands.evaluate", "write story beginnings taken from a corpus's held-out documents"),
    "probe": ("tinyschool.commands.probe", "score a model on grammatical minimal pairs (BLiMP, or any JSONL of good/bad pairs)"),
    "transform": ("tinyschool.commands.transform", "rewrite, translate or shuffle an existing corpus into a new one (resumable)"),
    "mixsearch": ("tinyschool.commands.mixsearch", "train proxy models on random mixtures, fit a regression, pick and validate the best mixture"),
    "sweep": ("tinyschool.commands.sweep", "run the ablation at every combination of the [sweep] axes (preset, tokens, vocab_size, context) and fit the scaling law"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser, with `command`'s module registered in full (all of them when None)."""
    parser = argparse.ArgumentParser(prog="tinyschool", description="Make training data for tiny language models and measure what it does to them.")
    parser.add_argument("--version", action="version", version=f"tinyschool {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = [COMMANDS[command][0]] if command in COMMANDS else list(dict.fromkeys(m for m, _ in COMMANDS.values())) if command is None else []
    for mod in wanted:
        importlib.import_module(mod).register(sub)
    for name, (_, help_) in COMMANDS.items():
        if name not in sub.choices:
            sub.add_parser(name, help=help_)
    return parser


def main(argv: list[str] | None = None) -> int:
    quiet_dependencies()  # before any backend imports transformers or torch
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), "")
    parser = build_parser(command)
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except UserError as e:  # what the user gave us: a recipe, a flag, a template, a cluster address
        err_console.print(f"[red]error:[/red] {escape(str(e))}", highlight=False, soft_wrap=True)
        return 2
    except (CorpusError, BackendError) as e:  # the data or a service failed
        err_console.print(f"[red]error:[/red] {escape(str(e))}", highlight=False, soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        err_console.print("interrupted; re-run the same command to resume")
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
