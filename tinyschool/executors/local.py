"""The `local` executor: the stages as they run on one machine (asyncio for generation, a process
pool for annotation)."""
from __future__ import annotations

import contextlib
from typing import Any, Iterator


class LocalExecutor:
    def __init__(self, cfg=None):
        self.cfg = cfg

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Nothing to start on one machine (the Ray executor starts or joins a cluster here)."""
        yield

    def run_generation(self, *args: Any, **kwargs: Any):
        from generators.runner import run_generation

        return run_generation(*args, **kwargs)

    def run_annotate(self, *args: Any, **kwargs: Any):
        from filters.stage import run_annotate

        return run_annotate(*args, **kwargs)
