"""`tinyschool transform RECIPE`: turn a corpus (any stage, generated or imported) into a new one."""
from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

import prompts
from corpora import Corpus
from corpora.errors import format_validation_error, read_toml
from corpora.languages import LANGUAGES
from generators.templates import TemplateError
from generators.transform_config import TransformRecipe
from generators.transform_stage import load_transform_template
from generators.transforms import TransformError, make_transform
from tinyschool.recipe import RecipeError
from tinyschool.stages.transform import transform_stage
from tinyschool.ui import console


def register(sub) -> None:
    p = sub.add_parser("transform", help="rewrite, translate or shuffle an existing corpus into a new one (resumable)")
    p.add_argument("recipe", help="transform recipe TOML (e.g. prompts/transforms/leaner_rewrite.toml)")
    p.add_argument("--out", help="corpus folder to write (overrides the recipe's `out`)")
    p.add_argument("--limit", type=int, help="transform only the first N source documents (overrides source.limit)")
    p.set_defaults(func=cmd_transform)


def load_transform_recipe(path, out: str | None = None, limit: int | None = None):
    path = Path(path)
    data = read_toml(path, "transform recipe", RecipeError)
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
        raise RecipeError(format_validation_error(path, e)) from None
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


def cmd_transform(args) -> int:
    recipe, transform = load_transform_recipe(args.recipe, args.out, args.limit)
    stats = transform_stage(recipe, Corpus(recipe.out_dir), transform)
    console.print(f"corpus: {recipe.out_dir}  (try: tinyschool query {recipe.out_dir} "
                  f"\"SELECT source_id, oov_before, oov_after, content_overlap FROM raw LIMIT 5\")")
    return 1 if stats.failed else 0
