"""The stage runner: each stage of the main job is a function (recipe, corpus, args) -> None.

`tinyschool run RECIPE` runs MAIN_JOB in order. A later capability adds its stage with one line.
"""
from __future__ import annotations

from typing import Any, Callable

from corpora import Corpus
from corpora.query import query_arrow
from generators.postprocess import postprocessor
from generators.registry import make_backend
from generators.runner import GenerationStats
from generators.templates import load_template
from tinyschool.commands.annotate import annotate_stage
from tinyschool.executors import make_executor
from tinyschool.quality import corpus_quality, quality_rows
from tinyschool.recipe import Recipe
from tinyschool.ui import console, print_table, progress_bar


def generate_stage(recipe: Recipe, corpus: Corpus, args: Any = None) -> GenerationStats:
    cfg = recipe
    recipe_dict = recipe.model_dump(mode="json")
    with progress_bar() as progress:
        stats = make_executor(recipe.executor).run_generation(
            corpus, recipe.name, cfg,
            backend_factory=lambda: make_backend(cfg.backend.name, **cfg.backend.options()),
            recipe_dict=recipe_dict, progress=progress,
            postprocess=postprocessor(load_template(cfg.template).kind),
        )
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
        ("input tokens", stats.prompt_tokens),
        ("output tokens", stats.completion_tokens),
        ("output tokens/s", round(stats.completion_tokens / stats.seconds, 1) if stats.seconds else 0),
        ("seconds", round(stats.seconds, 1)),
    ]
    b = recipe.backend
    if b.price_input_per_m is not None or b.price_output_per_m is not None:
        cost = stats.prompt_tokens / 1e6 * (b.price_input_per_m or 0) + stats.completion_tokens / 1e6 * (b.price_output_per_m or 0)
        rows.append(("cost (USD)", f"{cost:.4f}"))
    print_table(f"generate: {recipe.name} ({b.name}, {b.model})", ["", "value"], rows)
    if stats.failed:
        console.print(f"[yellow]{stats.failed} requests failed; they are stored with their error. Re-run to retry only those.[/yellow]")
    return stats


def summary_stage(recipe: Recipe, corpus: Corpus, args: Any = None) -> None:
    print_stats(corpus)
    q = corpus_quality(corpus)  # issue #15: how child-like the kept stories are
    if q and recipe.template.startswith("tinystories"):
        print_table("story quality (annotated)", ["", "value"], quality_rows(q))


def print_stats(corpus: Corpus) -> None:
    stage = "clean" if corpus.count("clean") else "raw"
    one = lambda sql: query_arrow(corpus, sql).to_pylist()  # noqa: E731
    s = one(f"""
        SELECT count(*) AS docs,
               count(*) FILTER (WHERE error IS NOT NULL) AS errors,
               coalesce(sum(completion_tokens), 0) AS tokens,
               coalesce(sum(len(regexp_split_to_array(trim(text), '\\s+'))) FILTER (WHERE error IS NULL), 0) AS words
        FROM {stage}""")[0]
    print_table(f"corpus {corpus.root} ({stage})", ["docs", "errors", "tokens", "words"],
                [(s["docs"], s["errors"], s["tokens"], s["words"])])
    q = one(f"""
        WITH w AS (SELECT len(regexp_split_to_array(trim(text), '\\s+')) AS n FROM {stage} WHERE error IS NULL AND text <> '')
        SELECT quantile_cont(n, 0.05) AS p5, quantile_cont(n, 0.25) AS p25, quantile_cont(n, 0.5) AS p50,
               quantile_cont(n, 0.75) AS p75, quantile_cont(n, 0.95) AS p95, max(n) AS max FROM w""")[0]
    print_table("word count quantiles", ["p5", "p25", "p50", "p75", "p95", "max"], [tuple(q.values())])
    rows = one(f"""
        WITH o AS (SELECT array_to_string(list_slice(regexp_split_to_array(trim(text), '\\s+'), 1, 3), ' ') AS opening
                   FROM {stage} WHERE error IS NULL AND text <> '')
        SELECT opening, count(*) AS docs, round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS pct
        FROM o GROUP BY opening ORDER BY docs DESC, opening LIMIT 10""")
    print_table("top openings (first three words)", ["opening", "docs", "%"], [(r["opening"], r["docs"], r["pct"]) for r in rows])


from tinyschool.commands.train import ablate_stage  # noqa: E402

# (name, function): the README's main job, in order
MAIN_JOB: list[tuple[str, Callable[[Recipe, Corpus, Any], Any]]] = [
    ("generate", generate_stage),
    ("annotate", annotate_stage),
    ("summary", summary_stage),
    ("ablate", ablate_stage),
]
