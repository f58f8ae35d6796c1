"""The transform stage: a source corpus's documents -> a new corpus's `raw` stage (rewrite,
translate, generate_in, or a deterministic control), resumable.

The driver (`run_transform`) reads the store once: output shard k holds plan items
[k*shard_size, (k+1)*shard_size) of the source documents; a shard in the manifest keeps its
successful rows, and a shard still missing rows is a task. Each task
(`generators.transform_stage.transform_task`) transforms its missing items (LLM answers through the
request cache) and writes the shard; the driver registers each shard as its task returns. Locally
the tasks run in this process, one after another (the backend has its own concurrency); on Ray each
worker builds its backend and its measurements once.
"""
from __future__ import annotations

import time
from functools import partial
from typing import Any, Callable

import pyarrow.compute as pc

import prompts
from corpora import Corpus
from corpora.query import query_arrow
from filters.measure import TransformJudge
from generators.base import Backend
from generators.registry import make_backend
from generators.runner import release_backend, shard_name
from generators.transform_config import TransformRecipe
from generators.transform_stage import (
    Judge,
    TransformSpec,
    TransformStats,
    read_sources,
    transform_task,
)
from generators.transforms import make_transform, target_id
from tinyschool.executors import make_executor
from tinyschool.stages.driver import Phases
from tinyschool.stages.generate import cost_rows, token_rows
from tinyschool.ui import console, print_table, progress_bar

COUNTS = ("ok", "failed", "within_bound")


def run_transform(corpus: Corpus, recipe: TransformRecipe, judge_factory: Callable[[], Judge | None],
                  backend_factory: Callable[[], Backend] | None = None, recipe_dict: dict[str, Any] | None = None,
                  progress: Any = None, executor=None) -> TransformStats:
    """Transform every planned source document not yet stored, with `executor` (default: local, in
    this process)."""
    executor = executor or make_executor()
    t0 = time.time()
    transform = make_transform(recipe.transform.name, recipe.transform.params)
    items, skipped = read_sources(recipe)
    stats = TransformStats(planned=len(items), skipped_source=skipped)
    corpus.init(recipe.name, recipe_dict, kind="transform")
    existing = corpus.shard_entries("raw")
    shards = [items[i:i + recipe.shard_size] for i in range(0, len(items), recipe.shard_size)]
    planned = {shard_name(k) for k in range(len(shards))}
    stale = [n for n in existing if n not in planned]  # the plan shrank (a lower `limit`): forget the rest
    if stale:
        def drop(m):
            for n in stale:
                m["stages"]["raw"]["shards"].pop(n, None)
        corpus.update_manifest(drop)
    todo = []
    for k, shard_items in enumerate(shards):
        name = shard_name(k)
        kept: dict[str, dict] = {}
        if name in existing:
            table = corpus.read_shard("raw", name)
            want = {target_id(recipe.name, transform, it.source_id) for it in shard_items}
            kept = {r["id"]: r for r in table.filter(pc.is_null(table["error"])).to_pylist() if r["id"] in want}
        if name not in existing or len(kept) != len(shard_items):
            todo.append((name, shard_items, kept))
        stats.reused += len(kept)

    if todo:
        ph = Phases(progress)
        total = sum(len(s) - len(kept) for _, s, kept in todo)
        bar = progress.add_task(f"transform ({transform.name})", total=total) if executor.local and progress is not None else None
        spec = TransformSpec(str(corpus.root), recipe, judge_factory, recipe.backend.model_dump_json(), backend_factory,
                             (lambda n: progress.advance(bar, n)) if bar is not None else None)
        fn = partial(transform_task, spec)
        runs = executor.map(fn, todo, processes=1, gpus=transform.uses_llm) if bar is not None else \
            ph.run(executor, f"transform ({transform.name})", fn, todo, total=total, size=lambda res: res[2],
                   processes=1, gpus=transform.uses_llm)
        try:
            with executor.session():
                for name, rows, _, s in runs:
                    corpus.register_shard("raw", name, rows)
                    for f in COUNTS:
                        setattr(stats, f, getattr(stats, f) + getattr(s, f))
                    for k, v in s.rounds.items():
                        stats.rounds[k] = stats.rounds.get(k, 0) + v
                    stats.gen.add(s.gen)
                    stats.shards_written += 1
        finally:
            if executor.local:
                release_backend()  # the backend this process built (a model) is not kept past the stage
    stats.seconds = time.time() - t0
    total_failed = sum(pc.sum(pc.is_valid(tb["error"])).as_py() or 0 for _, tb in corpus.iter_stage("raw", columns=["error"]))
    if total_failed == 0 and (todo or not corpus.is_complete("raw")):
        corpus.mark_complete("raw", {"transform": stats.as_dict() if todo else {"reused": stats.reused}})
    return stats


def transform_stage(recipe, corpus: Corpus, transform) -> Any:

    vocab = prompts.resolve("vocab", recipe.vocabulary, ".tsv") if recipe.vocabulary else None
    judge_factory = partial(TransformJudge, vocab, recipe.language, recipe.source_language)  # built once per worker
    b = recipe.backend
    with progress_bar() as progress:
        stats = run_transform(corpus, recipe, judge_factory, backend_factory=partial(make_backend, b.name, **b.options()),
                              recipe_dict=recipe.model_dump(mode="json"), progress=progress)
    g = stats.gen
    rows = [
        ("planned", stats.planned),
        ("source rows without text (skipped)", stats.skipped_source),
        ("already stored", stats.reused),
        ("transformed", stats.ok),
        ("failed", stats.failed),
    ]
    if transform.uses_llm:
        rows += [
            ("requests sent", g.requests),
            ("cache hits", g.cache_hits),
            *[(f"  failed: {k}", v) for k, v in sorted(g.failed_by_kind.items())],
            ("retries", g.retries),
            *token_rows(g, stats.seconds),
        ]
        if transform.name == "rewrite":
            rows += [(f"documents asked {k} time{'s' if k > 1 else ''}", v) for k, v in sorted(stats.rounds.items())]
            rows.append(("within the OOV bound", stats.within_bound))
        rows += cost_rows(g, b)
    rows.append(("seconds", round(stats.seconds, 1)))
    where = f"{b.name}, {b.model}" if transform.uses_llm else "deterministic"
    print_table(f"transform: {recipe.name} ({transform.name}; {where})", ["", "value"], rows)
    _print_means(corpus)
    if stats.failed:
        console.print(f"[yellow]{stats.failed} documents failed; they are stored with their error. Re-run to retry only those.[/yellow]")
    return stats


def _print_means(corpus: Corpus) -> None:

    r = query_arrow(corpus, """
        SELECT count(*) AS docs, avg(oov_before) AS oov_before, avg(oov_after) AS oov_after,
               avg(grade_before) AS grade_before, avg(grade_after) AS grade_after,
               avg(content_overlap) AS content_overlap, avg(length_ratio) AS length_ratio
        FROM raw WHERE error IS NULL""").to_pylist()[0]
    fmt = lambda v: "" if v is None else round(v, 3)  # noqa: E731
    print_table("means over the transformed documents", list(r), [[fmt(v) if k != "docs" else v for k, v in r.items()]])
