"""The main job: `tinyschool run RECIPE` runs these stages in order (each skips work already done).
A new stage is a module in this package and one line here."""
from __future__ import annotations

from typing import Any, Callable

from corpora import Corpus
from tinyschool.recipe import Recipe
from tinyschool.stages.ablate import ablate_stage
from tinyschool.stages.annotate import annotate_stage
from tinyschool.stages.generate import generate_stage
from tinyschool.stages.summary import summary_stage

# (name, function): the README's main job, in order
MAIN_JOB: list[tuple[str, Callable[[Recipe, Corpus, Any], Any]]] = [
    ("generate", generate_stage),
    ("annotate", annotate_stage),
    ("summary", summary_stage),
    ("ablate", ablate_stage),
]
