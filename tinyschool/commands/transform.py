"""`tinyschool transform RECIPE`: turn a corpus (any stage, generated or imported) into a new one."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

import prompts
from corpora import Corpus
from corpora.languages import LANGUAGES
from corpora.query import query_arrow
from filters.measure import TransformJudge
from generators.registry import make_backend
from generators.templates import TemplateError
from generators.transform_config import TransformRecipe
from generators.transform_stage import load_transform_template, run_transform
from generators.transforms import TransformError, make_transform
from tinyschool.recipe import RecipeError, _format_error, read_toml
from tinyschool.ui import console, print_table, progress_bar


def register(sub) -> None:
    p = sub.add_parser("transform", help="rewrite, translate or shuffle an existing corpus into a new one (resumable)")
    p.add_argument("recipe", help="transform recipe TOML (e.g. prompts/transforms/leaner_rewrite.toml)")
    p.add_argument("--out", help="corpus folder to write (overrides the recipe's `out`)")
    p.add_argument("--limit", type=int, help="transform only the first N source documents (overrides source.limit)")
    p.set_defaults(func=cmd_transform)


def load_transform_recipe(path, out: str | None = None, limit: int | None = None):
    path = Path(path)
    data = read_toml(path)
    data.setdefault("name", path.stem)
    if out is not None:
        data["out"] = out
    if limit is not None:
        data.setdefault("source", {})
        if isinstance(data["source"], dict):
            data["source"]["limit"] = limit
    try:
        recipe = TransformRecipe.model_validate(data)
    except ValidationError as e:
        raise RecipeError(_format_error(path, e)) from None
    try:
        transform = make_transform(recipe.transform.name, recipe.transform.params)
        load_transform_template(recipe, transform)
    except TransformError as e:
        raise RecipeError(f"{path}: {e}") from None
    except TemplateError as e:
        raise RecipeError(f"{path}: transform.params.template: {e}") from None
    if recipe.vocabulary:
        vp = prompts.resolve("vocab", recipe.vocabulary, ".tsv")
        if not vp.exists():
            raise RecipeError(f"{path}: vocabulary: file not found ({vp})")
    for key in ("language", "source_language"):
        code = getattr(recipe, key)
        if code not in LANGUAGES:
            raise RecipeError(f"{path}: {key}: unknown language code {code!r} (known: {', '.join(LANGUAGES)})")
    return recipe, transform


def transform_stage(recipe, corpus: Corpus, transform) -> Any:

    vocab = prompts.resolve("vocab", recipe.vocabulary, ".tsv") if recipe.vocabulary else None
    with console.status("loading the measurements (spaCy, textstat)"):
        judge = TransformJudge(vocab, recipe.language, recipe.source_language)
    b = recipe.backend
    with progress_bar() as progress:
        stats = run_transform(corpus, recipe, judge, backend_factory=lambda: make_backend(b.name, **b.options()),
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
            ("input tokens", g.prompt_tokens),
            ("output tokens", g.completion_tokens),
            ("output tokens/s", round(g.completion_tokens / stats.seconds, 1) if stats.seconds else 0),
        ]
        if transform.name == "rewrite":
            rows += [(f"documents asked {k} time{'s' if k > 1 else ''}", v) for k, v in sorted(stats.rounds.items())]
            rows.append(("within the OOV bound", stats.within_bound))
        if b.price_input_per_m is not None or b.price_output_per_m is not None:
            cost = g.prompt_tokens / 1e6 * (b.price_input_per_m or 0) + g.completion_tokens / 1e6 * (b.price_output_per_m or 0)
            rows.append(("cost (USD)", f"{cost:.4f}"))
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


def cmd_transform(args) -> int:
    recipe, transform = load_transform_recipe(args.recipe, args.out, args.limit)
    stats = transform_stage(recipe, Corpus(recipe.out_dir), transform)
    console.print(f"corpus: {recipe.out_dir}  (try: tinyschool query {recipe.out_dir} "
                  f"\"SELECT source_id, oov_before, oov_after, content_overlap FROM raw LIMIT 5\")")
    return 1 if stats.failed else 0
