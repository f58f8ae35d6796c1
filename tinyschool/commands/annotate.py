"""`tinyschool annotate RECIPE`: the cleaning stage alone (raw -> annotated + clean)."""
from __future__ import annotations

from corpora import Corpus
from tinyschool.commands import add_recipe_args, recipe_from_args
from tinyschool.stages.annotate import annotate_stage


def register(sub) -> None:
    p = sub.add_parser("annotate", help="annotate, dedup and decontaminate the raw corpus into `annotated` and `clean`")
    add_recipe_args(p)
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes of a local run (default: the recipe's executor.num_workers, 2)")
    p.set_defaults(func=cmd_annotate)


def cmd_annotate(args) -> int:
    recipe = recipe_from_args(args)
    annotate_stage(recipe, Corpus(recipe.out_dir), args)
    return 0
