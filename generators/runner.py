"""The generation runner: plan -> shards -> cache -> backend -> raw Parquet, resumable.

The plan (every item's slots, prompt, id and seed) is a pure function of the recipe, so a shard is
the unit of work: shard k always holds items [k*shard_size, (k+1)*shard_size). A shard is written
once all its items have an answer (a completion or a recorded failure). Inside a shard, answers
are committed to the request cache as they arrive, so a SIGKILL loses at most one sub-batch; the
re-run reads the rest back from the cache. A re-run retries failed rows only.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

import pyarrow as pa
import pyarrow.compute as pc

import prompts
from corpora import Corpus, raw_table
from corpora.vocab import read_vocab
from generators.base import Backend, Completion, Request, Sampling
from generators.cache import RequestCache
from generators.config import GenerationConfig
from generators.constrain import constraint_for
from generators.structured import check_all, resolve_schema
from generators.templates import PromptItem, Template, apply_slot_overrides, load_template, render_document, sample_item


@dataclass
class GenerationStats:
    planned: int = 0
    requests: int = 0  # sent to the backend this run
    ok: int = 0
    failed: int = 0
    failed_by_kind: Counter = field(default_factory=Counter)
    retries: int = 0
    cache_hits: int = 0
    reused: int = 0  # rows already in the corpus
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    shards_written: int = 0

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["failed_by_kind"] = dict(self.failed_by_kind)
        return d


def load_vocab_for(cfg: GenerationConfig):
    if not cfg.vocabulary:
        return None
    return read_vocab(prompts.resolve("vocab", cfg.vocabulary, ".tsv"))


def build_plan(cfg: GenerationConfig, recipe_name: str, template: Template | None = None) -> list[PromptItem]:
    t = template or apply_slot_overrides(load_template(cfg.template), cfg.slot_overrides)
    vocab = load_vocab_for(cfg)
    return [sample_item(t, vocab, recipe_name, cfg.seed, i, cfg.samples_per_prompt) for i in range(cfg.count)]


def to_request(item: PromptItem, t: Template, cfg: GenerationConfig) -> Request:
    messages = []
    if item.system:
        messages.append({"role": "system", "content": item.system})
    messages.append({"role": "user", "content": item.prompt})
    s = cfg.sampling
    return Request(
        id=item.id,
        messages=tuple(messages),
        prefill=item.prefill,
        sampling=Sampling(temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens, seed=item.seed,
                          repetition_penalty=s.repetition_penalty, stop=tuple(s.stop or t.stop)),
        json_schema=resolve_schema(t.json_schema, where=t.path or t.name),
        constraint=constraint_for(item.slots, prompts.resolve("vocab", cfg.vocabulary, ".tsv") if cfg.vocabulary else None,
                                  s.vocab_bias, s.required_bias),
    )


def shard_name(k: int) -> str:
    return f"part-{k:05d}"


def _chunks(seq: list, n: int) -> Iterator[list]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def make_record(item: PromptItem, t: Template, c: Completion, backend: str, model: str, recipe_name: str,
                sampling: Sampling, postprocess: Callable[[PromptItem, Completion], Completion] | None = None) -> dict[str, Any]:
    if postprocess is not None and c.ok:
        c = postprocess(item, c)
    text = render_document(t, item.slots, c.text) if c.ok else ""
    return {
        "id": item.id,
        "text": text,
        "prompt": item.prompt,
        "template": t.name,
        "slots": item.slots,
        "backend": backend,
        "model": model,
        "sampling": sampling.as_record(),
        "finish_reason": c.finish_reason if c.ok else "error",
        "prompt_tokens": c.prompt_tokens,
        "completion_tokens": c.completion_tokens,
        "latency_s": c.latency_s,
        "created_at": datetime.fromtimestamp(c.created_at or 0, tz=timezone.utc),
        "error": c.error,
        "error_kind": c.error_kind,
        "sample_index": item.index,
        "recipe": recipe_name,
        "meta": None,
    }


def generate_shard(shard_items: list[PromptItem], missing: list[PromptItem], kept: dict[str, dict], t: Template,
                   cfg: GenerationConfig, get_backend: Callable[[], Backend], cache: RequestCache, recipe_name: str,
                   stats: GenerationStats, postprocess: Callable[[PromptItem, Completion], Completion] | None = None,
                   sub_batch: int | None = None, advance: Callable[[int], None] | None = None) -> pa.Table:
    """One shard's raw table: `kept` rows (by id) as they are, `missing` items answered from the cache
    or the backend (`get_backend()` is called only when a request must be sent). Counts go to `stats`."""
    answers: dict[str, Completion] = {}
    reqs = [to_request(it, t, cfg) for it in missing]
    backend = get_backend() if reqs else None
    keys = {r.id: r.cache_key(backend.name, backend.model, getattr(backend, "api", "chat")) for r in reqs} if reqs else {}
    hits = cache.get_many(keys.values()) if keys else {}
    for r in reqs:
        c = hits.get(keys[r.id])
        if c is not None:
            c.id = r.id
            c.cached = True
            answers[r.id] = c
            stats.cache_hits += 1
    if advance is not None and answers:
        advance(len(answers))
    pending = [r for r in reqs if r.id not in answers]
    step = sub_batch or max(getattr(backend, "batch_size", 0) or 0, getattr(backend, "concurrency", 0) or 0, 8) * 2
    for chunk in _chunks(pending, step):
        # every backend's answers are checked against the template's schema before they are cached
        got = check_all(chunk, backend.generate(chunk, progress=advance))
        stats.requests += len(chunk)
        cache.put_many((keys[c.id], c) for c in got)
        for c in got:
            answers[c.id] = c
    sampling_by_id = {r.id: r.sampling for r in reqs}
    records = []
    for it in shard_items:
        if it.id in kept:
            records.append(kept[it.id])
            continue
        c = answers[it.id]
        rec = make_record(it, t, c, backend.name, backend.model, recipe_name, sampling_by_id[it.id], postprocess)
        records.append(rec)
        if not c.cached:  # an answer from the cache costs nothing this run: not usage again
            stats.retries += c.retries
            stats.prompt_tokens += c.prompt_tokens
            stats.completion_tokens += c.completion_tokens
    for rec in records:
        if rec["id"] in kept:
            continue
        if rec["error"] is None:
            stats.ok += 1
        else:
            stats.failed += 1
            stats.failed_by_kind[rec["error_kind"] or "error"] += 1
    return raw_table(records)


def run_generation(corpus: Corpus, recipe_name: str, cfg: GenerationConfig, backend_factory: Callable[[], Backend],
                   recipe_dict: dict[str, Any] | None = None, progress: Any = None,
                   postprocess: Callable[[PromptItem, Completion], Completion] | None = None,
                   sub_batch: int | None = None, run_shards: Callable[..., None] | None = None) -> GenerationStats:
    """Generate every planned item not yet stored. `progress` is a rich Progress (or None).
    `run_shards(todo, shards, template, stats, progress)`, when given, writes and registers the shards
    still to do in place of the loop below (a cluster executor: `tinyschool.executors`)."""
    t0 = time.time()
    t = apply_slot_overrides(load_template(cfg.template), cfg.slot_overrides)
    items = build_plan(cfg, recipe_name, t)
    stats = GenerationStats(planned=len(items))
    corpus.init(recipe_name, recipe_dict)
    existing = corpus.shard_entries("raw")
    shards = list(_chunks(items, cfg.shard_size))
    planned_names = {shard_name(k) for k in range(len(shards))}

    # shards beyond the plan (the count was lowered): forget them so the corpus has exactly the plan
    stale = [n for n in existing if n not in planned_names]
    if stale:
        def drop(m):
            for n in stale:
                m["stages"]["raw"]["shards"].pop(n, None)
        corpus.update_manifest(drop)

    # work out what each shard still needs
    todo: list[tuple[int, list[PromptItem], dict[str, dict]]] = []
    for k, shard_items in enumerate(shards):
        name = shard_name(k)
        kept: dict[str, dict] = {}
        if name in existing:
            table = corpus.read_shard("raw", name)
            ok_rows = table.filter(pc.is_null(table["error"])).to_pylist()
            kept = {r["id"]: r for r in ok_rows}
        missing = [it for it in shard_items if it.id not in kept]
        if missing or name not in existing or len(kept) != len(shard_items):
            todo.append((k, missing, kept))
        stats.reused += sum(1 for it in shard_items if it.id in kept)

    if not todo:
        stats.seconds = time.time() - t0
        if not corpus.is_complete("raw"):
            corpus.mark_complete("raw", {"generation": stats.as_dict()})
        return stats

    if run_shards is not None:
        run_shards(todo, shards, t, stats, progress)
        return _finish(corpus, stats, t0)

    backend = None

    def get_backend() -> Backend:
        nonlocal backend
        if backend is None:
            backend = backend_factory()
        return backend

    cache = RequestCache(cfg.cache)
    task = progress.add_task("generate", total=sum(len(m) for _, m, _ in todo)) if progress is not None else None
    advance = (lambda n: progress.advance(task, n)) if task is not None else None
    try:
        for k, missing, kept in todo:
            table = generate_shard(shards[k], missing, kept, t, cfg, get_backend, cache, recipe_name, stats,
                                   postprocess, sub_batch, advance)
            corpus.write_shard("raw", shard_name(k), table)
            stats.shards_written += 1
    finally:
        cache.close()
        if backend is not None:
            backend.close()
    return _finish(corpus, stats, t0)


def _finish(corpus: Corpus, stats: GenerationStats, t0: float) -> GenerationStats:
    stats.seconds = time.time() - t0
    total_failed = sum(
        pc.sum(pc.is_valid(tb["error"])).as_py() or 0 for _, tb in corpus.iter_stage("raw", columns=["error"])
    )
    if total_failed == 0:
        corpus.mark_complete("raw", {"generation": stats.as_dict()})
    return stats
