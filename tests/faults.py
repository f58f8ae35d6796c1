"""Fault injection, owned by the tests: an executor whose tasks SIGKILL their own worker once, after
doing their work and before reporting it, for the tags a test lists as files in a folder.

A task's tag is `<function>_<input>`: "annotate_shard_part-00001", "band_bucket_1",
"write_shard_part-00002", "generate_task_part-00001". The marker file `<folder>/<tag>` is
removed and `<tag>.killed` left behind when the kill happens. Production code knows nothing of
this: the wrapper goes around the task function the stage hands to `executor.map`.
"""
from __future__ import annotations

import os
import signal
from functools import partial
from pathlib import Path


def task_tag(fn, x) -> str:
    name = fn.func.__name__ if isinstance(fn, partial) else fn.__name__
    first = x[0] if isinstance(x, tuple) else x
    return f"{name}_{first}"


def kill_once_after(folder: str, fn, x):
    out = fn(x)
    marker = Path(folder) / task_tag(fn, x)
    try:
        marker.unlink()
    except FileNotFoundError:
        return out
    marker.with_name(marker.name + ".killed").write_text(str(os.getpid()))
    os.kill(os.getpid(), signal.SIGKILL)


class KillingExecutor:
    """Wraps an executor (Ray: a killed worker is retried elsewhere); every task goes through `kill_once_after`."""

    def __init__(self, inner, folder):
        self.inner, self.folder = inner, str(folder)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def map(self, fn, inputs, **opts):
        return self.inner.map(partial(kill_once_after, self.folder, fn), inputs, **opts)


# Data-parallel ranks that fail (trainers.parallel.start's `follower`), run in a spawned process.
def rank_dies_before_joining(rank: int, world: int, port: int) -> None:
    raise SystemExit(3)


def rank_dies_after_joining(rank: int, world: int, port: int) -> None:
    from trainers import parallel

    parallel.join(rank, world, port)
    os._exit(3)  # mid-run, as a killed or crashed process: no goodbye to the others
