"""Terminal output: one rich console, progress bars, summary tables."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Any, Iterable, Sequence

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

# piped output (logs, CI, tests) gets wide lines instead of rich's 80-column default
console = Console(stderr=False, highlight=False, width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)


@contextmanager
def progress_bar():
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=err_console, transient=False,
                  disable=not sys.stderr.isatty() and False) as p:
        yield p


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(str(c), overflow="fold")
    for r in rows:
        t.add_row(*["" if v is None else _fmt(v) for v in r])
    return t


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    if title:  # on its own line: a table's own title wraps to the table's width
        console.print(f"[bold]{escape(title)}[/bold]")
    console.print(table("", columns, rows))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"
    return str(v)
