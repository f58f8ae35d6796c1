"""The ablation stage: a short curriculum ablation on the corpus the main job just made."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import prompts
from corpora import Corpus
from tinyschool.commands.train import run_ablation_cli
from tinyschool.ui import console
from trainers.config import load_experiment


def ablate_stage(recipe, corpus: Corpus, args: Any = None):
    """Runs the recipe's `experiment` (skipped when it has none) with the corpus replaced by the
    recipe's own; the runs go to the experiment's `out`, or inside the corpus folder when the
    corpus was redirected with --out."""
    if not getattr(recipe, "experiment", None):
        console.print("ablate: the recipe names no experiment; skipped")
        return None
    exp = load_experiment(prompts.resolve("experiments", recipe.experiment, ".toml"), {"corpus": str(corpus.root)})
    if getattr(args, "out", None):
        exp = exp.model_copy(update={"out": str(Path(args.out) / "runs" / exp.name)})
    rep = run_ablation_cli(exp)
    console.print(f"[bold]ablation report: {rep['report']}[/bold]")
    return rep
