"""`tinyschool generate RECIPE`: the generation stage alone."""
from __future__ import annotations

from corpora import Corpus
from tinyschool.commands import add_recipe_args, recipe_from_args
from tinyschool.stages.generate import generate_stage


def register(sub) -> None:
    p = sub.add_parser("generate", help="generate the raw corpus of a recipe (resumable)")
    add_recipe_args(p)
    p.set_defaults(func=cmd_generate)


def cmd_generate(args) -> int:
    recipe = recipe_from_args(args)
    stats = generate_stage(recipe, Corpus(recipe.out_dir), args)
    return 1 if stats.failed else 0
