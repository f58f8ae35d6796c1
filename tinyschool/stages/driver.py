"""What every stage's driver shares: phases timed and shown as progress while an executor maps a
task function over the work still to do.

A stage is a driver plus task functions. The driver runs in the calling process: it reads the store
once to decide what is already done (resume), hands the rest to `executor.map` as one input per
shard or partition, and records each result as it comes back (registering a shard, adding counts).
Task functions live with their package (`filters.annotate`, `generators.runner`, ...), take one
picklable input, are idempotent (atomic writes, the same bytes when run twice) and know nothing of
executors. The stage module (`tinyschool.stages.<name>`) holds the driver and the function the main
job calls: `(recipe, corpus, args) -> stats`, which prints the stage's summary table.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Iterator


class Phases:
    """Seconds per phase of a stage (`lap(name)` ends one) and a progress bar per phase."""

    def __init__(self, progress: Any = None):
        self.progress, self.seconds, self._clock = progress, {}, time.time()

    def lap(self, name: str) -> None:
        now = time.time()
        self.seconds[name] = round(now - self._clock, 2)
        self._clock = now

    def run(self, executor, name: str, fn: Callable[[Any], Any], inputs: Iterable[Any], *, total: int | None = None,
            done: int = 0, size: Callable[[Any], int] = lambda result: 1, **opts: Any) -> Iterator[Any]:
        """`executor.map(fn, inputs, **opts)` with a progress bar `name` of `total` units (`done`
        already), each result advancing it by `size(result)`."""
        inputs = list(inputs)
        task = self.progress.add_task(name, total=total if total is not None else len(inputs)) if self.progress is not None else None
        if task is not None and done:
            self.progress.advance(task, done)
        for result in executor.map(fn, inputs, **opts):
            if task is not None:
                self.progress.advance(task, size(result))
            yield result
