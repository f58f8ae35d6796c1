"""The `local` executor: a stage's tasks on this machine, in the calling process or in a pool of
forked worker processes (`num_workers`)."""
from __future__ import annotations

import contextlib
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Any, Callable, Iterable, Iterator

from tinyschool.executors import ExecutorConfig, shuffle_partitions


class LocalExecutor:
    local = True

    def __init__(self, cfg: ExecutorConfig | None = None):
        self.cfg = cfg or ExecutorConfig()

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Nothing to start on one machine (the Ray executor starts or joins a cluster here)."""
        yield

    def partitions(self, docs: int) -> int:
        return shuffle_partitions(self.cfg, docs)

    def map(self, fn: Callable[[Any], Any], inputs: Iterable[Any], *, processes: int | None = None,
            setup: Callable[[], Any] | None = None, gpus: bool = False, spawn: bool = False) -> Iterator[Any]:
        """`fn(x)` for every input, results as they complete. One process (or one input): here, in
        order. Else a fresh pool of forked processes, at most `num_workers` tasks in flight; `setup()`
        runs here first, so that every worker inherits what it loaded (a model, spaCy, an index).
        `spawn`: fresh interpreters instead of forks, for tasks that run torch's own threads (training)."""
        items = list(inputs)
        n = min(processes or self.cfg.num_workers, self.cfg.num_workers, len(items))
        if setup is not None and items:
            setup()
        if n <= 1:
            for x in items:
                yield fn(x)
            return
        ex = ProcessPoolExecutor(n, mp_context=get_context("spawn" if spawn else "fork"))
        pending = iter(items)
        flight: set = set()
        try:
            while True:
                while len(flight) < n:
                    x = next(pending, _END)
                    if x is _END:
                        break
                    flight.add(ex.submit(fn, x))
                if not flight:
                    return
                done, flight = wait(flight, return_when=FIRST_COMPLETED)
                for f in done:
                    yield f.result()
        finally:
            for f in flight:
                f.cancel()
            ex.shutdown(wait=True, cancel_futures=True)


_END = object()
