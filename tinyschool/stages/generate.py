"""The generation stage: every planned item not yet stored -> `raw` shards.

The driver (`run_generation`) reads the store once: a shard in the manifest keeps its successful
rows; a shard still missing rows (never written, or with failed requests) is a task. Each task
(`generators.runner.generate_task`) answers its missing items from the request cache or the
backend and writes the shard; the driver registers each shard as its task returns. Locally the
tasks run one after another in this process (the backend has its own concurrency and one model is
loaded once); on Ray each worker builds its own backend and keeps it for the shards it gets.
"""
from __future__ import annotations

import time
from functools import partial
from typing import Any, Callable

import pyarrow.compute as pc

from corpora import Corpus
from generators.base import Backend, Completion
from generators.config import GenerationConfig
from generators.postprocess import postprocessor
from generators.registry import STEP_BIASES, make_backend
from generators.runner import (
    GenerationStats,
    ShardSpec,
    build_plan,
    generate_task,
    release_backend,
    shard_name,
)
from generators.templates import PromptItem, apply_slot_overrides, load_template
from tinyschool.executors import make_executor
from tinyschool.stages.driver import Phases
from tinyschool.ui import console, print_table, progress_bar

def warn_unapplied_biases(cfg: GenerationConfig) -> None:
    """The decoding biases of `[sampling]` need a backend that runs code at every step: say so where
    the recipe's backend would silently send the plain request."""
    if getattr(cfg, "backend", None) is None:
        return
    knobs, name = cfg.sampling.biases_on(), cfg.backend.name
    if knobs and name not in STEP_BIASES:
        console.print(f"[yellow]warning: backend {name} cannot bias a remote model's decoding at every step: "
                      f"\\[sampling] {', '.join(knobs)} are not applied (the {' and '.join(STEP_BIASES)} backends apply them; "
                      "a fixed logit_bias can go in \\[backend] extra_body)[/yellow]")


def run_generation(corpus: Corpus, recipe_name: str, cfg: GenerationConfig, backend_factory: Callable[[], Backend],
                   recipe_dict: dict[str, Any] | None = None, progress: Any = None,
                   postprocess: Callable[[PromptItem, Completion], Completion] | None = None,
                   sub_batch: int | None = None, executor=None) -> GenerationStats:
    """Generate every planned item not yet stored, with `executor` (default: local, in this process).
    `progress` is a rich Progress (or None)."""
    executor = executor or make_executor()
    t0 = time.time()
    t = apply_slot_overrides(load_template(cfg.template), cfg.slot_overrides)
    items = build_plan(cfg, recipe_name, t)
    warn_unapplied_biases(cfg)
    stats = GenerationStats(planned=len(items))
    corpus.init(recipe_name, recipe_dict)
    existing = corpus.shard_entries("raw")
    shards = [items[i:i + cfg.shard_size] for i in range(0, len(items), cfg.shard_size)]
    planned_names = {shard_name(k) for k in range(len(shards))}

    # shards beyond the plan (the count was lowered): forget them so the corpus has exactly the plan
    stale = [n for n in existing if n not in planned_names]
    if stale:
        def drop(m):
            for n in stale:
                m["stages"]["raw"]["shards"].pop(n, None)
        corpus.update_manifest(drop)

    # what each shard still needs
    todo: list[tuple[str, list[PromptItem], list[PromptItem], dict[str, dict]]] = []
    for k, shard_items in enumerate(shards):
        name = shard_name(k)
        kept: dict[str, dict] = {}
        if name in existing:
            table = corpus.read_shard("raw", name)
            kept = {r["id"]: r for r in table.filter(pc.is_null(table["error"])).to_pylist()}
        missing = [it for it in shard_items if it.id not in kept]
        if missing or name not in existing or len(kept) != len(shard_items):
            todo.append((name, shard_items, missing, kept))
        stats.reused += sum(1 for it in shard_items if it.id in kept)

    if not todo:
        stats.seconds = time.time() - t0
        if not corpus.is_complete("raw"):
            corpus.mark_complete("raw", {"generation": stats.as_dict()})
        return stats

    ph = Phases(progress)
    task_bar = None
    if executor.local and progress is not None:  # in this process: the bar moves inside a shard too
        task_bar = progress.add_task("generate", total=sum(len(m) for _, _, m, _ in todo))
    spec = ShardSpec(str(corpus.root), recipe_name, cfg,
                     cfg.backend.model_dump_json() if hasattr(cfg, "backend") else repr(backend_factory),
                     backend_factory, postprocess, sub_batch,
                     (lambda n: progress.advance(task_bar, n)) if task_bar is not None else None)
    fn = partial(generate_task, spec)
    if task_bar is not None:
        runs = executor.map(fn, todo, processes=1, gpus=True)
    else:
        runs = ph.run(executor, "generate", fn, todo, total=sum(len(m) for _, _, m, _ in todo), size=lambda res: res[2],
                      processes=1, gpus=True)
    try:
        with executor.session():
            for name, rows, _, s in runs:
                corpus.register_shard("raw", name, rows)
                stats.add(s)
                stats.shards_written += 1
    finally:
        if executor.local:
            release_backend()  # the backend this process built (a model) is not kept past the stage
    stats.seconds = time.time() - t0
    total_failed = sum(pc.sum(pc.is_valid(tb["error"])).as_py() or 0 for _, tb in corpus.iter_stage("raw", columns=["error"]))
    if total_failed == 0:
        corpus.mark_complete("raw", {"generation": stats.as_dict()})
    return stats


def token_rows(g: GenerationStats, seconds: float) -> list[tuple[str, Any]]:
    """The summary rows of what a backend was sent and wrote (every stage that calls one shows them)."""
    return [("input tokens", g.prompt_tokens), ("output tokens", g.completion_tokens),
            ("output tokens/s", round(g.completion_tokens / seconds, 1) if seconds else 0)]


def cost_rows(g: GenerationStats, b) -> list[tuple[str, Any]]:
    """("cost (USD)", ...) when the backend config has prices, else nothing."""
    if b.price_input_per_m is None and b.price_output_per_m is None:
        return []
    cost = g.prompt_tokens / 1e6 * (b.price_input_per_m or 0) + g.completion_tokens / 1e6 * (b.price_output_per_m or 0)
    return [("cost (USD)", f"{cost:.4f}")]


def generate_stage(recipe, corpus: Corpus, args: Any = None) -> GenerationStats:
    """The main job's first stage: generate with the recipe's backend and executor, print the summary."""
    cfg = recipe
    with progress_bar() as progress:
        stats = run_generation(corpus, recipe.name, cfg,
                               backend_factory=lambda: make_backend(cfg.backend.name, **cfg.backend.options()),
                               recipe_dict=recipe.model_dump(mode="json"), progress=progress,
                               postprocess=postprocessor(load_template(cfg.template).kind),
                               executor=make_executor(recipe.executor))
    if stats.requests == 0 and stats.cache_hits == 0 and stats.shards_written == 0:
        console.print(f"generate: nothing to do, {stats.reused} documents already in {corpus.root}/raw")
        return stats
    rows = [
        ("planned", stats.planned),
        ("already stored", stats.reused),
        ("requests sent", stats.requests),
        ("cache hits", stats.cache_hits),
        ("succeeded", stats.ok),
        ("failed", stats.failed),
        *[(f"  failed: {k}", v) for k, v in sorted(stats.failed_by_kind.items())],
        ("retries", stats.retries),
        *([("lone surrogates -> U+FFFD", stats.replaced_surrogates)] if stats.replaced_surrogates else []),
        *token_rows(stats, stats.seconds),
        ("seconds", round(stats.seconds, 1)),
    ]
    b = recipe.backend
    rows += cost_rows(stats, b)
    print_table(f"generate: {recipe.name} ({b.name}, {b.model})", ["", "value"], rows)
    if stats.failed:
        console.print(f"[yellow]{stats.failed} requests failed; they are stored with their error. Re-run to retry only those.[/yellow]")
    return stats
