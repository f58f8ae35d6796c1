"""Recipe loading and validation: one clear line per problem, naming the file and the key."""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, ValidationError

import prompts
from filters.config import FilterConfig
from generators.config import GenerationConfig
from generators.templates import TemplateError, load_template
from tinyschool.executors import ExecutorConfig


class RecipeError(Exception):
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


_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "required key is missing",
}


def _format_error(path: Path, e: ValidationError) -> str:
    err = e.errors()[0]
    loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
    msg = _MESSAGES.get(err["type"], err["msg"])
    if err["type"] not in _MESSAGES and "input" in err and not isinstance(err["input"], (dict, list)):
        msg += f" (got {err['input']!r})"
    more = len(e.errors()) - 1
    return f"{path}: {loc}: {msg}" + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")


def read_toml(path: Path, what: str = "recipe") -> dict[str, Any]:
    """A TOML file as a dict; a missing or broken file is one RecipeError line."""
    if not path.exists():
        raise RecipeError(f"{path}: {what} file not found")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"{path}: invalid TOML: {e}") from None
    except UnicodeDecodeError:
        raise RecipeError(f"{path}: not a UTF-8 text file") from None


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    path = Path(path)
    data = read_toml(path)
    data.setdefault("name", path.stem)
    for k, v in (overrides or {}).items():
        if v is not None:
            data[k] = v
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as e:
        raise RecipeError(_format_error(path, e)) from None
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
