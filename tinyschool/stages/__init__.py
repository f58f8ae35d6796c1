"""The stages of the main job, one module each: a driver (decides from the store what is done, maps
task functions over the rest with an executor) and the function the main job calls,
`(recipe, corpus, args) -> stats`, which prints the stage's summary. See ARCHITECTURE.md ("Adding
a stage").

`tinyschool run RECIPE` runs MAIN_JOB in order. A new stage is a module here and one line below.
"""
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
