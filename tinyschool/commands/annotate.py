"""`tinyschool annotate RECIPE`: the cleaning stage alone (raw -> annotated + clean)."""
from __future__ import annotations

from typing import Any

from corpora import Corpus
from tinyschool.commands.run import add_recipe_args, recipe_from_args
from tinyschool.ui import console, print_table, progress_bar


def register(sub) -> None:
    p = sub.add_parser("annotate", help="annotate, dedup and decontaminate the raw corpus into `annotated` and `clean`")
    add_recipe_args(p)
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.set_defaults(func=cmd_annotate)


def annotate_stage(recipe, corpus: Corpus, args: Any = None):
    import prompts
    from filters.decontam import EvalSetError
    from filters.report import reason_rows
    from tinyschool.executors import make_executor
    from tinyschool.cli import UserError

    vocab = prompts.resolve("vocab", recipe.vocabulary, ".tsv") if recipe.vocabulary else None
    workers = getattr(args, "workers", None) or 2
    if workers < 1:
        raise UserError("--workers must be at least 1")
    d = recipe.filters.dedup
    try:
        with progress_bar() as progress:
            stats = make_executor(recipe.executor).run_annotate(corpus, recipe.filters, vocab, progress=progress, workers=workers)
    except EvalSetError as e:
        raise UserError(str(e)) from None
    console.print(f"near-dedup: threshold {d.threshold}, {d.num_perm} permutations -> {stats.bands} bands x {stats.rows} rows "
                  f"(false positive area {stats.fp:.4f}, false negative area {stats.fn:.4f})")
    if stats.nothing_to_do:
        console.print(f"annotate: nothing to do, {stats.docs} documents already annotated in {corpus.root}/annotated "
                      f"({stats.kept} kept)")
        return stats
    print_table(f"annotate: {corpus.root} ({stats.docs} documents, {stats.seconds:.1f} s, "
                f"{stats.docs / stats.seconds if stats.seconds else 0:.0f} docs/s)", ["outcome", "docs", "%"], reason_rows(stats))
    console.print(f"clusters of near/exact duplicates: {stats.clusters}; histogram: {stats.histogram}")
    return stats


def cmd_annotate(args) -> int:
    recipe = recipe_from_args(args)
    annotate_stage(recipe, Corpus(recipe.out_dir), args)
    return 0
