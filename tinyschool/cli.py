"""The `tinyschool` command. Each subcommand is a module in tinyschool/commands with `register()`."""
from __future__ import annotations

import argparse
import importlib
import sys

from tinyschool import __version__

# one line per subcommand module; a new command is a module plus a line here
COMMANDS = [
    "tinyschool.commands.run",
    "tinyschool.commands.generate",
    "tinyschool.commands.annotate",
    "tinyschool.commands.vocab",
    "tinyschool.commands.query",
    "tinyschool.commands.io",
    "tinyschool.commands.train",
    "tinyschool.commands.evaluate",
    "tinyschool.commands.mixsearch",
    "tinyschool.commands.sweep",
]


class UserError(Exception):
    """An error in what the user gave us: printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinyschool", description="Make training data for tiny language models and measure what it does to them.")
    parser.add_argument("--version", action="version", version=f"tinyschool {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for mod in COMMANDS:
        importlib.import_module(mod).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from corpora import CorpusError
    from generators.base import BackendError
    from generators.templates import TemplateError
    from tinyschool.executors import ExecutorError
    from tinyschool.recipe import RecipeError
    from rich.markup import escape

    from tinyschool.ui import err_console

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except (UserError, RecipeError, TemplateError, ExecutorError) as e:
        err_console.print(f"[red]error:[/red] {escape(str(e))}", highlight=False, soft_wrap=True)
        return 2
    except (CorpusError, BackendError) as e:
        err_console.print(f"[red]error:[/red] {escape(str(e))}", highlight=False, soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        err_console.print("interrupted; re-run the same command to resume")
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
