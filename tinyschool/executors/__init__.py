"""Executors: where a stage's tasks run. One job: `executor.map(fn, inputs)` runs a task function
on every input and yields the results as they complete. `local` (this machine: the calling process
or a process pool) or `ray` (a Ray cluster). No executor knows a stage: the stages
(`tinyschool.stages`) decide what to run and what is already done, then call `map`.

A recipe picks one with its `[executor]` table; both run the same task functions, so a `ray` run
writes the same bytes as a `local` one.

The contract, for a new backend (Dask, Slurm, ...): a class with
 - `session()`: a context manager that starts or joins the workers for a whole run;
 - `map(fn, inputs, *, processes=None, setup=None, gpus=False, spawn=False)`: `fn(x)` for every `x`, results
   yielded as they complete (order unspecified); `fn` and every `x` are picklable; a task's own
   exception is re-raised as itself; a task lost more often than allowed is an `ExecutorError`.
   `processes=1` asks for the calling process when the executor can (a task that does its own
   concurrency: generation); `setup()` warms per-process state before the workers start;
   `gpus` asks for `num_gpus` per task; `spawn` asks a process-pool executor for fresh interpreters
   (tasks that run torch's threads: training runs);
 - `local`: True when tasks run on this machine's memory (callbacks may be passed to tasks);
 - `partitions(docs)`: how many partitions a shuffle over `docs` documents uses.
"""
from __future__ import annotations

import importlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from corpora.errors import ExecutorError  # noqa: F401 (the executors' error, re-exported)

__all__ = ["EXECUTORS", "ExecutorConfig", "ExecutorError", "make_executor", "shuffle_partitions"]


class ExecutorConfig(BaseModel):
    """The recipe's `[executor]` table."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["local", "ray"] = "local"
    address: str | None = Field(None, description='Ray cluster to join ("auto", "ray://head:10001", "head:6379"); none: start a local Ray')
    num_workers: int = Field(2, ge=1, description="tasks in flight at once (processes of a local run, CPUs of a local Ray started for you)")
    num_cpus: float = Field(1, gt=0, description="CPUs each task asks for")
    num_gpus: float = Field(0, ge=0, description="GPUs each generation task asks for (a vLLM engine per worker: 1)")
    memory_gb: float | None = Field(None, gt=0, description="memory each task asks Ray to reserve")
    max_retries: int = Field(3, ge=0, description="times Ray re-runs a task whose worker died")
    partitions: int | None = Field(None, ge=2, description="dedup shuffle partitions (default: 2 per worker, and at least one per 100,000 documents)")
    object_store_mb: int | None = Field(None, ge=80, description="object store of a local Ray started for you (default: Ray's)")


# name -> "module:class"; the module is imported only when chosen (ray is an optional extra)
EXECUTORS: dict[str, str] = {
    "local": "tinyschool.executors.local:LocalExecutor",
    "ray": "tinyschool.executors.ray_executor:RayExecutor",
}

DOCS_PER_PARTITION = 100_000  # bounds a dedup bucket task's memory: ~40 MB of band entries at 21 bands


def shuffle_partitions(cfg: ExecutorConfig, docs: int) -> int:
    """Partitions of a shuffle over `docs` documents: the recipe's, else enough for every worker
    twice over and for no partition to hold more than DOCS_PER_PARTITION documents' entries."""
    if cfg.partitions:
        return cfg.partitions
    return max(2, 2 * cfg.num_workers, -(-docs // DOCS_PER_PARTITION))


def make_executor(cfg: ExecutorConfig | None = None, workers: int | None = None):
    """The executor a recipe's `[executor]` table names; `workers` (a `--workers` flag) overrides num_workers."""
    cfg = cfg or ExecutorConfig()
    if workers is not None:
        cfg = cfg.model_copy(update={"num_workers": workers})
    module, _, cls = EXECUTORS[cfg.kind].partition(":")
    return getattr(importlib.import_module(module), cls)(cfg)
