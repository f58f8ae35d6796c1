"""The transform stage: a source corpus's documents -> a new corpus's `raw` stage, resumable.

Driver + per-shard task, like generation: the plan (the source documents, in shard and row order, the
first `limit`) is a pure function of the source corpus and the recipe, and output shard k always
holds plan items [k*shard_size, (k+1)*shard_size). `transform_shard` makes one shard's table; it is
idempotent (LLM answers come from the request cache on a re-run), so the driver can run it anywhere.
A shard with failed rows is redone for those rows only; a SIGKILL loses at most the answers not yet
in the cache.

Every record keeps `source_id`, `transform` and `transform_params` (and `meta.source`: corpus, stage).
LLM transforms go through `generators.runner.generate_shard` (backends, cache, schema checks, usage
counts), one call per round. `rewrite` asks again, naming the answer's out-of-vocabulary words, while
its OOV rate is above `max_oov_rate` (at most `max_rounds` asks); every round is stored in `rounds`,
and the document keeps the first answer within the bound, else the one with the lowest OOV rate.

Measurements come from a `judge` handed in by the caller (filters.measure.TransformJudge: the
vocabulary and readability annotators; generators does not import filters).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol

import pyarrow as pa

from corpora import Corpus, CorpusError, raw_table
from corpora.languages import language
from corpora.store import write_parquet_atomic
from generators.base import Backend
from generators.cache import RequestCache
from generators.config import GenerationConfig
from generators.runner import (
    GenerationStats,
    generate_shard,
    worker_backend,
)
from generators.templates import (
    PromptItem,
    Template,
    TemplateError,
    item_seed,
    load_template,
    render_text,
)
from generators.transform_config import TransformRecipe
from generators.transforms import Transform, make_transform, target_id, transform_rng

# columns a transformed corpus adds to the raw schema
TRANSFORM_COLUMNS = pa.schema([
    ("source_id", pa.string()),
    ("transform", pa.string()),
    ("transform_params", pa.string()),  # JSON
    ("oov_before", pa.float64()),
    ("oov_after", pa.float64()),
    ("grade_before", pa.float64()),
    ("grade_after", pa.float64()),
    ("content_overlap", pa.float64()),
    ("length_ratio", pa.float64()),
    ("n_rounds", pa.int64()),
    ("rounds", pa.string()),  # JSON list: every ask of an LLM transform (prompt, answer, OOV rate, words)
])


class Judge(Protocol):
    def measure_source(self, text: str) -> Any: ...

    def measure_output(self, text: str) -> Any: ...

    def compare(self, source: Any, output: Any) -> tuple[float | None, float | None]: ...


@dataclass(frozen=True)
class SourceItem:
    index: int
    source_id: str
    text: str
    slots: dict[str, Any]


@dataclass
class TransformStats:
    planned: int = 0
    skipped_source: int = 0  # source rows without text (failed requests) are not transformed
    reused: int = 0
    ok: int = 0
    failed: int = 0
    shards_written: int = 0
    rounds: dict[int, int] = field(default_factory=dict)  # asks -> documents
    within_bound: int = 0
    seconds: float = 0.0
    gen: GenerationStats = field(default_factory=GenerationStats)

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "gen"}
        d["rounds"] = {str(k): v for k, v in sorted(self.rounds.items())}
        d["generation"] = self.gen.as_dict()
        return d


@dataclass
class ShardContext:
    """Everything a shard task needs besides its items (built once by the driver)."""

    recipe: TransformRecipe
    transform: Transform
    judge: Judge | None
    template: Template | None = None
    gen_cfg: GenerationConfig | None = None
    get_backend: Callable[[], Backend] | None = None
    cache: RequestCache | None = None
    stats: TransformStats = field(default_factory=TransformStats)


def read_sources(recipe: TransformRecipe) -> tuple[list[SourceItem], int]:
    """The plan: source documents with text, in shard and row order; and how many rows were skipped."""
    src = Corpus(recipe.source.corpus)
    if not src.exists():
        raise CorpusError(f"{src.root}: source corpus not found (source.corpus in the recipe)")
    if not src.shard_names(recipe.source.stage):
        raise CorpusError(f"{src.root}: the {recipe.source.stage!r} stage has no shards (source.stage in the recipe)")
    items: list[SourceItem] = []
    skipped = 0
    limit = recipe.source.limit
    for _, t in src.iter_stage(recipe.source.stage):
        cols = t.column_names
        ids, texts = t.column("id").to_pylist(), t.column("text").to_pylist()
        errors = t.column("error").to_pylist() if "error" in cols else [None] * t.num_rows
        slots = t.column("slots").to_pylist() if "slots" in cols else [None] * t.num_rows
        for i in range(t.num_rows):
            if errors[i] is not None or not texts[i]:
                skipped += 1
                continue
            if limit is not None and len(items) >= limit:
                return items, skipped
            try:
                s = json.loads(slots[i]) if slots[i] else {}
            except ValueError:
                s = {}
            items.append(SourceItem(len(items), ids[i], texts[i], s if isinstance(s, dict) else {}))
    return items, skipped


def _chunks(seq: list, n: int) -> Iterator[list]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def _record(ctx: ShardContext, it: SourceItem, text: str, *, before: Any = None, after: Any = None,
            rounds: list[dict[str, Any]] | None = None, gen_row: dict[str, Any] | None = None,
            error: str | None = None, error_kind: str | None = None, usage: tuple[int, int, float] = (0, 0, 0.0),
            prompt: str = "") -> dict[str, Any]:
    t, r = ctx.transform, ctx.recipe
    params = t.params.model_dump(mode="json")
    overlap, ratio = ctx.judge.compare(before, after) if (ctx.judge is not None and before is not None and after is not None) else (None, None)
    g = gen_row or {}
    return {
        "id": target_id(r.name, t, it.source_id),
        "text": text if error is None else "",
        "prompt": prompt,
        "template": ctx.template.name if ctx.template is not None else t.name,
        "slots": it.slots,
        "backend": g.get("backend", "transform"),
        "model": g.get("model", ""),
        "sampling": g.get("sampling"),
        "finish_reason": "error" if error is not None else g.get("finish_reason", "stop"),
        "prompt_tokens": usage[0],
        "completion_tokens": usage[1],
        "latency_s": usage[2],
        "created_at": g.get("created_at"),
        "error": error,
        "error_kind": error_kind,
        "sample_index": it.index,
        "recipe": r.name,
        "meta": {"transform": {"name": t.name, "params": params},
                 "source": {"corpus": str(r.source.corpus), "stage": r.source.stage, "id": it.source_id}},
        "source_id": it.source_id,
        "transform": t.name,
        "transform_params": json.dumps(params, sort_keys=True, ensure_ascii=False),
        "oov_before": getattr(before, "oov_rate", None),
        "oov_after": getattr(after, "oov_rate", None) if error is None else None,
        "grade_before": getattr(before, "grade", None),
        "grade_after": getattr(after, "grade", None) if error is None else None,
        "content_overlap": overlap if error is None else None,
        "length_ratio": ratio if error is None else None,
        "n_rounds": len(rounds or []),
        "rounds": json.dumps(rounds, ensure_ascii=False) if rounds is not None else None,
    }


def transformed_table(records: list[dict[str, Any]]) -> pa.Table:
    table = raw_table(records)
    for f in TRANSFORM_COLUMNS:
        table = table.append_column(f, pa.array([rec.get(f.name) for rec in records], f.type))
    return table


def _deterministic(ctx: ShardContext, it: SourceItem) -> dict[str, Any]:
    out = ctx.transform.apply(it.text, transform_rng(ctx.recipe.seed, it.source_id))
    before = ctx.judge.measure_source(it.text) if ctx.judge is not None else None
    after = ctx.judge.measure_output(out) if ctx.judge is not None else None
    return _record(ctx, it, out, before=before, after=after)


def _prompt_item(ctx: ShardContext, it: SourceItem, round_no: int, extra: dict[str, Any]) -> PromptItem:
    t, r = ctx.template, ctx.recipe
    p = ctx.transform.params.model_dump()
    values = {**t.constants, **p, "text": it.text, "slots": it.slots,
              "language": language(r.language).name, "source_language_name": language(r.source_language).name, **extra}
    source = t.prompt if round_no == 1 else t.constants["reask"]
    pid = f"{target_id(r.name, ctx.transform, it.source_id)}:r{round_no}"
    # the sampling seed depends on the source and the round, not on the parameters: raising
    # max_rounds or the OOV bound re-uses every answer already in the request cache
    return PromptItem(index=it.index, id=pid, slots={}, system=render_text(t.system, values),
                      prompt=render_text(source, values), prefill=render_text(t.prefill, values) if t.prefill else "",
                      seed=item_seed(r.seed, f"{it.source_id}:r{round_no}"))


def _llm(ctx: ShardContext, items: list[SourceItem], advance: Callable[[int], None] | None) -> list[dict[str, Any]]:
    p = ctx.transform.params
    rewrite = ctx.transform.name == "rewrite"
    max_rounds = p.max_rounds if rewrite else 1
    judge = ctx.judge
    before = {it.source_id: judge.measure_source(it.text) if judge is not None else None for it in items}
    rounds: dict[str, list[dict[str, Any]]] = {it.source_id: [] for it in items}
    rows: dict[str, list[dict[str, Any]]] = {it.source_id: [] for it in items}
    afters: dict[str, list[Any]] = {it.source_id: [] for it in items}
    failed: dict[str, dict[str, Any]] = {}
    extra: dict[str, dict[str, Any]] = {}
    for it in items:
        hard = list(getattr(before[it.source_id], "oov_words", ()) or ())[: getattr(p, "named_words", 12)]
        extra[it.source_id] = {"hard_words": hard}
    pending = list(items)
    for round_no in range(1, max_rounds + 1):
        if not pending:
            break
        pitems = [_prompt_item(ctx, it, round_no, extra[it.source_id]) for it in pending]
        table = generate_shard(pitems, pitems, {}, ctx.template, ctx.gen_cfg, ctx.get_backend, ctx.cache,
                               ctx.recipe.name, ctx.stats.gen)
        nxt = []
        for it, pi, row in zip(pending, pitems, table.to_pylist()):
            sid = it.source_id
            rows[sid].append(row)
            if row["error"] is not None:
                failed[sid] = row
                rounds[sid].append({"round": round_no, "prompt": pi.prompt, "text": "", "error": row["error"]})
                continue
            after = judge.measure_output(row["text"]) if judge is not None else None
            afters[sid].append(after)
            oov = getattr(after, "oov_rate", None)
            words = list(getattr(after, "oov_words", ()) or ())
            rounds[sid].append({"round": round_no, "prompt": pi.prompt, "text": row["text"], "oov_rate": oov,
                                "oov_words": words, "finish_reason": row["finish_reason"],
                                "completion_tokens": row["completion_tokens"]})
            if rewrite and oov is not None and oov > p.max_oov_rate and round_no < max_rounds:
                extra[sid] = {**extra[sid], "previous": row["text"], "offending": words[: p.named_words]}
                nxt.append(it)
        pending = nxt
    records = []
    for it in items:
        sid = it.source_id
        rs = rows[sid]
        usage = (sum(x["prompt_tokens"] or 0 for x in rs), sum(x["completion_tokens"] or 0 for x in rs),
                 round(sum(x["latency_s"] or 0.0 for x in rs), 6))
        if sid in failed:
            f = failed[sid]
            records.append(_record(ctx, it, "", before=before[sid], rounds=rounds[sid], gen_row=f, error=f["error"],
                                   error_kind=f["error_kind"], usage=usage, prompt=rs[0]["prompt"]))
        else:
            ok = [k for k, a in enumerate(afters[sid])]
            # the first answer within the bound, else the lowest OOV rate (the earliest on a tie)
            oov = [getattr(afters[sid][k], "oov_rate", None) for k in ok]
            bound = getattr(p, "max_oov_rate", None)
            within = [k for k in ok if bound is None or oov[k] is None or oov[k] <= bound]
            pick = within[0] if within else min(ok, key=lambda k: (oov[k], k))
            ctx.stats.within_bound += bool(within)
            ctx.stats.rounds[len(rs)] = ctx.stats.rounds.get(len(rs), 0) + 1
            for k, rd in enumerate(rounds[sid]):
                rd["chosen"] = k == pick
            records.append(_record(ctx, it, rs[pick]["text"], before=before[sid], after=afters[sid][pick],
                                   rounds=rounds[sid], gen_row=rs[pick], usage=usage, prompt=rs[0]["prompt"]))
        if advance is not None:
            advance(1)
    return records


def transform_shard(shard_items: list[SourceItem], kept: dict[str, dict], ctx: ShardContext,
                    advance: Callable[[int], None] | None = None) -> pa.Table:
    """One output shard: `kept` rows (by target id) as they are, the other items transformed."""
    todo = [it for it in shard_items if target_id(ctx.recipe.name, ctx.transform, it.source_id) not in kept]
    if ctx.transform.uses_llm:
        made = _llm(ctx, todo, advance)
    else:
        made = []
        for it in todo:
            made.append(_deterministic(ctx, it))
            if advance is not None:
                advance(1)
    by_id = {**kept, **{r["id"]: r for r in made}}
    records = [by_id[target_id(ctx.recipe.name, ctx.transform, it.source_id)] for it in shard_items]
    for r in made:
        if r["error"] is None:
            ctx.stats.ok += 1
        else:
            ctx.stats.failed += 1
    return transformed_table(records)


def load_transform_template(recipe: TransformRecipe, transform: Transform) -> Template | None:
    if not transform.uses_llm:
        return None
    t = load_template(transform.params.template)
    if transform.name == "rewrite" and transform.params.max_rounds > 1 and "reask" not in t.constants:
        raise TemplateError(f"{t.path}: a rewrite template needs constants.reask (the prompt of a re-ask) when max_rounds > 1")
    return t


@dataclass
class TransformSpec:
    """What every shard task of one transform run shares (picklable: a Ray worker gets a copy)."""

    root: str
    recipe: TransformRecipe
    judge_factory: Callable[[], Judge | None]
    backend_key: str  # the backend's settings: a worker keeps its backend while this stays the same
    backend_factory: Callable[[], Backend] | None = None
    advance: Callable[[int], None] | None = None  # progress inside a shard (only in the driver's process)


_JUDGE: dict[str, Any] = {}


def _worker_judge(spec: TransformSpec) -> Judge | None:
    """One judge (spaCy, textstat) per process, built on the first shard and kept for the next ones."""
    key = spec.recipe.model_dump_json()
    if _JUDGE.get("key") != key:
        _JUDGE.update(key=key, judge=spec.judge_factory())
    return _JUDGE["judge"]


def transform_task(spec: TransformSpec, task: tuple[str, list[SourceItem], dict[str, dict]]
                   ) -> tuple[str, int, int, TransformStats]:
    """One output shard (`task`: its name, its plan items, the rows kept by target id): transformed,
    written atomically to `raw/<name>.parquet` (not registered: the driver does that). Returns
    (name, rows, items transformed, counts). Idempotent: LLM answers come from the request cache."""
    name, shard_items, kept = task
    recipe = spec.recipe
    transform = make_transform(recipe.transform.name, recipe.transform.params)
    template = load_transform_template(recipe, transform)
    stats = TransformStats()
    gen_cfg, cache, get_backend = None, None, None
    if transform.uses_llm:
        if spec.backend_factory is None:
            raise CorpusError("an LLM transform needs a backend")
        gen_cfg = GenerationConfig(template=str(template.path or template.name), vocabulary=None, count=1, seed=recipe.seed,
                                   shard_size=recipe.shard_size, sampling=recipe.sampling, backend=recipe.backend, cache=recipe.cache)
        cache = RequestCache(recipe.cache)
        get_backend = lambda: worker_backend(spec.backend_key, spec.backend_factory)  # noqa: E731
    ctx = ShardContext(recipe, transform, _worker_judge(spec), template, gen_cfg, get_backend, cache, stats)
    try:
        table = transform_shard(shard_items, kept, ctx, spec.advance)
    finally:
        if cache is not None:
            cache.close()
    write_parquet_atomic(table, Corpus(spec.root).shard_path("raw", name))
    return name, table.num_rows, len(shard_items) - len(kept), stats

