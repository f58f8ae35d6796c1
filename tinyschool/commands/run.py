"""`tinyschool run RECIPE`: the main job, every stage in order (each skips work already done)."""
from __future__ import annotations

from corpora import Corpus
from tinyschool.commands import add_recipe_args, recipe_from_args
from tinyschool.executors import make_executor
from tinyschool.stages.main_job import MAIN_JOB
from tinyschool.ui import console


def register(sub) -> None:
    p = sub.add_parser("run", help="run the main job of a recipe: generate, clean, summarize, ...")
    add_recipe_args(p)
    p.add_argument("--skip", action="append", default=[], help="skip a stage by name (repeatable)")
    p.set_defaults(func=cmd_run)


def cmd_run(args) -> int:
    recipe = recipe_from_args(args)
    corpus = Corpus(recipe.out_dir)
    with make_executor(recipe.executor).session():  # one Ray session for every stage, not one per stage
        for name, fn in MAIN_JOB:
            if name in args.skip:
                continue
            console.rule(f"[bold]{name}")
            fn(recipe, corpus, args)
    console.print(f"\ncorpus: {corpus.root}  (try: tinyschool query {corpus.root} \"SELECT template, count(*) FROM raw GROUP BY 1\")")
    return 0
