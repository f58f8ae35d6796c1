"""Terminal output: one rich console, progress bars, summary tables."""
from __future__ import annotations

import os
import sys
import threading
import time
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
    """A live bar on a terminal; elsewhere (a log file, CI) a `LineProgress` that prints a line at
    least every TINYSCHOOL_PROGRESS_INTERVAL seconds (default 30)."""
    if not err_console.is_terminal:
        with LineProgress(float(os.environ.get("TINYSCHOOL_PROGRESS_INTERVAL", "30"))) as p:
            yield p
        return
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=err_console, transient=False) as p:
        yield p


def _duration(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class LineProgress:
    """rich.Progress's `add_task` / `advance` / `update` for output that is not a terminal: one line per
    task (`generate: 32/80 (40%), 0.52/s, elapsed 1m01s, ETA 1m32s`) every `interval` seconds while it
    runs, even when nothing advanced (a batch of the embedded model takes minutes), and one when it
    completes. `clock` and `write` are injectable (tests drive a fake clock and call `tick()`)."""

    def __init__(self, interval: float = 30.0, clock=time.monotonic, write=None, thread: bool = True):
        self.interval = interval
        self.clock = clock
        self.write = write or (lambda line: print(line, file=sys.stderr, flush=True))
        self.tasks: dict[int, dict] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True) if thread else None

    def __enter__(self):
        if self._thread is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1)
        return False

    def _run(self) -> None:
        while not self._stop.wait(min(self.interval, 1.0)):
            self.tick()

    def add_task(self, description: str, total: float | None = None, **_: Any) -> int:
        with self._lock:
            tid = len(self.tasks)
            now = self.clock()
            self.tasks[tid] = {"description": description, "total": total, "completed": 0.0, "start": now,
                               "last": now, "done": False}
            return tid

    def advance(self, task: int, advance: float = 1) -> None:
        self.update(task, advance=advance)

    def update(self, task: int, completed: float | None = None, total: float | None = None,
               advance: float | None = None, **_: Any) -> None:
        with self._lock:
            t = self.tasks[task]
            if total is not None:
                t["total"] = total
            if completed is not None:
                t["completed"] = completed
            if advance:
                t["completed"] += advance
            if t["total"] is not None and t["completed"] >= t["total"] and not t["done"]:
                t["done"] = True
                self._emit(t)

    def tick(self) -> None:
        """Print a line for every running task whose last line is `interval` seconds old."""
        with self._lock:
            now = self.clock()
            for t in self.tasks.values():
                if not t["done"] and now - t["last"] >= self.interval:
                    self._emit(t)

    def line(self, t: dict) -> str:
        now = self.clock()
        elapsed = max(now - t["start"], 1e-9)
        done, total = t["completed"], t["total"]
        rate = done / elapsed
        parts = [f"{t['description']}: {done:g}/{total:g} ({100 * done / total:.0f}%)" if total else f"{t['description']}: {done:g}"]
        parts.append(f"{rate:.2f}/s" if rate < 10 else f"{rate:,.0f}/s")
        parts.append(f"elapsed {_duration(elapsed)}")
        if total and done < total:
            parts.append(f"ETA {_duration((total - done) / rate)}" if rate > 0 else "ETA ?")
        return ", ".join(parts)

    def _emit(self, t: dict) -> None:
        t["last"] = self.clock()
        self.write(self.line(t))


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
