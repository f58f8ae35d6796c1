"""The subcommands, one module each (`register(sub)` adds its parsers); `tinyschool.cli.COMMANDS` lists them.
What several commands share lives here."""
from __future__ import annotations

from tinyschool.recipe import Recipe, load_recipe


def add_recipe_args(p) -> None:
    p.add_argument("recipe", help="recipe TOML file")
    p.add_argument("--out", help="corpus folder (overrides the recipe's `out`)")
    p.add_argument("--count", type=int, help="number of documents (overrides the recipe's `count`)")


def recipe_from_args(args) -> Recipe:
    return load_recipe(args.recipe, {"out": args.out, "count": args.count})


