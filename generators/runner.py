"""The generation stage's task functions: plan -> shards -> cache -> backend -> raw Parquet, resumable
(its driver is `tinyschool.stages.generate`).

The plan (every item's slots, prompt, id and seed) is a pure function of the recipe, so a shard is
the unit of work: shard k always holds items [k*shard_size, (k+1)*shard_size). A shard is written
once all its items have an answer (a completion or a recorded failure). Inside a shard, answers
are committed to the request cache as they arrive (`CacheWriter`: at most a second after each), so
a SIGKILL loses at most about a second of answers; the re-run reads the rest back from the cache.
A re-run retries failed rows only.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

import pyarrow as pa

import prompts
from corpora import Corpus, raw_table
from corpora.store import write_parquet_atomic
from corpora.vocab import read_vocab
from generators.base import Backend, Completion, Request, Sampling
from generators.cache import CacheWriter, RequestCache
from generators.config import GenerationConfig
from generators.constrain import constraint_for
from generators.structured import check, resolve_schema
from generators.templates import (
    PromptItem,
    Template,
    apply_slot_overrides,
    load_template,
    render_document,
    sample_item,
)


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
    replaced_surrogates: int = 0  # lone surrogates in answers, stored as U+FFFD

    # what a task's stats add to the stage's (planned, reused, seconds: the driver's own)
    TASK_COUNTS = ("requests", "ok", "failed", "retries", "cache_hits", "prompt_tokens", "completion_tokens",
                   "replaced_surrogates")

    def add(self, task: GenerationStats) -> None:
        """Add one task's counts to these."""
        for f in self.TASK_COUNTS:
            setattr(self, f, getattr(self, f) + getattr(task, f))
        self.failed_by_kind.update(task.failed_by_kind)

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
                          repetition_penalty=s.repetition_penalty, stop=tuple(s.stop or t.stop), min_tokens=s.min_tokens),
        json_schema=resolve_schema(t.json_schema, where=t.path or t.name),
        constraint=constraint_for(item.slots, prompts.resolve("vocab", cfg.vocabulary, ".tsv") if cfg.vocabulary else None,
                                  s.vocab_bias, s.required_bias, sentence_bias=s.sentence_bias,
                                  sentence_words=s.sentence_words, echo_bias=s.echo_bias),
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
        "meta": {"replaced_surrogates": c.extra["replaced_surrogates"]} if c.extra.get("replaced_surrogates") else None,
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
    by_id = {r.id: r for r in pending}
    writer = CacheWriter(cache)
    checked: dict[str, Completion] = {}

    def on_result(c: Completion) -> None:
        # every backend's answers are checked against the template's schema before they are cached
        if c.id in by_id:
            c = check(by_id[c.id], c)
        checked[c.id] = c
        if c.id in keys:
            writer.add(keys[c.id], c)

    try:
        for chunk in _chunks(pending, step):
            got = backend.generate(chunk, progress=advance, on_result=on_result)
            stats.requests += len(chunk)
            for c in got:
                if c.id not in checked:  # an answer the backend did not report as it came
                    on_result(c)
                answers[c.id] = checked[c.id]
    finally:
        writer.close()
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
        if rec["meta"]:
            stats.replaced_surrogates += rec["meta"].get("replaced_surrogates", 0)
        if rec["error"] is None:
            stats.ok += 1
        else:
            stats.failed += 1
            stats.failed_by_kind[rec["error_kind"] or "error"] += 1
    return raw_table(records)


# ---- the task (one shard; any executor runs it) ----------------------------------------------------
_BACKEND: dict[str, Any] = {}


def worker_backend(key: str, factory: Callable[[], Backend]) -> Backend:
    """One backend per process, built on the first shard that needs it and kept for the next ones
    (a model, a client, a vLLM engine)."""
    if _BACKEND.get("key") != key:
        release_backend()
        _BACKEND.update(key=key, backend=factory())
    return _BACKEND["backend"]


def release_backend() -> None:
    """Close this process's backend, if it has one."""
    old = _BACKEND.pop("backend", None)
    _BACKEND.clear()
    if old is not None:
        old.close()


@dataclass
class ShardSpec:
    """What every shard task of one generation run shares."""

    root: str
    recipe_name: str
    cfg: GenerationConfig
    backend_key: str  # the backend's settings: a worker keeps its backend while this stays the same
    backend_factory: Callable[[], Backend]
    postprocess: Callable[[PromptItem, Completion], Completion] | None = None
    sub_batch: int | None = None
    advance: Callable[[int], None] | None = None  # progress inside a shard (only when run in the driver's process)


def generate_task(spec: ShardSpec, task: tuple[str, list[PromptItem], list[PromptItem], dict[str, dict]]
                  ) -> tuple[str, int, int, GenerationStats]:
    """One shard (`task`: its name, items, the items still missing, the rows kept by id): answered,
    written atomically to `raw/<name>.parquet` (not registered: the driver does that). Returns
    (name, rows, items generated, counts)."""
    name, shard_items, missing, kept = task
    cfg = spec.cfg
    t = apply_slot_overrides(load_template(cfg.template), cfg.slot_overrides)
    stats = GenerationStats()
    cache = RequestCache(cfg.cache)
    try:
        table = generate_shard(shard_items, missing, kept, t, cfg, lambda: worker_backend(spec.backend_key, spec.backend_factory),
                               cache, spec.recipe_name, stats, spec.postprocess, spec.sub_batch, spec.advance)
    finally:
        cache.close()
    write_parquet_atomic(table, Corpus(spec.root).shard_path("raw", name))
    return name, table.num_rows, len(missing), stats
