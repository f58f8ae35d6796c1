"""The `local` executor: the stages as they run on one machine (asyncio for generation, a process
pool for annotation)."""
from __future__ import annotations

from typing import Any


class LocalExecutor:
    def __init__(self, cfg=None):
        self.cfg = cfg

    def run_generation(self, *args: Any, **kwargs: Any):
        from generators.runner import run_generation

        return run_generation(*args, **kwargs)

    def run_annotate(self, *args: Any, **kwargs: Any):
        from filters.stage import run_annotate

        return run_annotate(*args, **kwargs)
