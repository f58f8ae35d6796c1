"""Executors: where the shard tasks of a stage run. `local` (this machine: the stages' own loop and
process pool) or `ray` (a Ray cluster: one task per shard, MinHash dedup as a shuffle by band key).

A recipe picks one with its `[executor]` table; every executor runs the same per-shard functions,
so a `ray` run writes the same bytes as a `local` one.
"""
from __future__ import annotations

import importlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ExecutorError(Exception):
    """A problem with the executor setting (Ray missing, cluster unreachable), meant for the user."""


class ExecutorConfig(BaseModel):
    """The recipe's `[executor]` table."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["local", "ray"] = "local"
    address: str | None = Field(None, description='Ray cluster to join ("auto", "ray://head:10001", "head:6379"); none: start a local Ray')
    num_workers: int = Field(2, ge=1, description="shard tasks in flight at once (and CPUs of a local Ray started for you)")
    num_cpus: float = Field(1, gt=0, description="CPUs each task asks for")
    num_gpus: float = Field(0, ge=0, description="GPUs each generation task asks for (a vLLM engine per worker: 1)")
    memory_gb: float | None = Field(None, gt=0, description="memory each task asks Ray to reserve")
    max_retries: int = Field(3, ge=0, description="times Ray re-runs a task whose worker died")
    partitions: int | None = Field(None, ge=2, description="dedup shuffle partitions (default: 2 per worker)")
    object_store_mb: int | None = Field(None, ge=80, description="object store of a local Ray started for you (default: Ray's)")


# name -> "module:class"; the module is imported only when chosen (ray is an optional extra)
EXECUTORS: dict[str, str] = {
    "local": "tinyschool.executors.local:LocalExecutor",
    "ray": "tinyschool.executors.ray_executor:RayExecutor",
}


def make_executor(cfg: ExecutorConfig | None = None):
    cfg = cfg or ExecutorConfig()
    module, _, cls = EXECUTORS[cfg.kind].partition(":")
    return getattr(importlib.import_module(module), cls)(cfg)
