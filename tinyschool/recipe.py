"""Recipe loading and validation: one clear line per problem, naming the file and the key."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, ValidationError

import prompts
from corpora.errors import UserError, format_validation_error, read_toml
from filters.config import FilterConfig
from generators.config import GenerationConfig
from generators.templates import TemplateError, load_template
from tinyschool.executors import ExecutorConfig


class RecipeError(UserError):
    """Raised with a one-line message: `FILE: KEY: problem`."""


class Recipe(GenerationConfig):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    out: str = Field("", description="corpus folder (default data/<name>)")
    license: str = "unknown"
    experiment: str | None = Field(None, description="experiment TOML (or name in prompts/experiments) ablated at the end of the main job; none = skip")
    filters: FilterConfig = Field(default_factory=FilterConfig)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)

    @property
    def out_dir(self) -> Path:
        return Path(self.out or f"data/{self.name}")


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    path = Path(path)
    data = read_toml(path, "recipe", RecipeError)
    data.setdefault("name", path.stem)
    for k, v in (overrides or {}).items():
        if v is not None:
            data[k] = v
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as e:
        raise RecipeError(format_validation_error(path, e)) from None
    # best-of-k is decided at cleaning time: the filters see the recipe's `select` and k
    if recipe.select == "best":
        recipe.filters.select.mode = "best"
    if recipe.samples_per_prompt > 1:
        recipe.filters.select.group_size = recipe.samples_per_prompt
    try:
        load_template(recipe.template)
    except TemplateError as e:
        raise RecipeError(f"{path}: template: {e}") from None
    if recipe.vocabulary:
        vp = prompts.resolve("vocab", recipe.vocabulary, ".tsv")
        if not vp.exists():
            raise RecipeError(f"{path}: vocabulary: file not found ({vp})")
    for i, es in enumerate(recipe.filters.decontam.eval_sets):
        found = resolve_data_path(es.path, path)
        if found is None:
            raise RecipeError(f"{path}: filters.decontam.eval_sets[{i}].path: file not found ({es.path})")
        es.path = str(found)
    return recipe


def resolve_data_path(p: str, recipe_path: Path) -> Path | None:
    """A relative data path is looked up from the working directory, then beside the recipe, then
    from the repository (or installed package) root, so a recipe runs from any folder."""
    cand = Path(p).expanduser()
    if cand.is_absolute():
        return cand if cand.exists() else None
    for base in (Path.cwd(), recipe_path.resolve().parent, prompts.ROOT.parent):
        if (base / cand).exists():
            return (base / cand).resolve()
    return None
