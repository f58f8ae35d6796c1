"""What a cleaning worker loads: every default annotator is built (spaCy's English pipeline,
textstat with the offline CMU dictionary) without importing torch or NLTK (and through NLTK SciPy
and scikit-learn), seconds of start-up and hundreds of MB per process, and a later import of each
still works and the metrics still equal textstat's."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json, sys
import prompts
from filters.base import Resources
from filters.config import FilterConfig
from filters.registry import build_annotators
from filters.text import Doc

annotators = build_annotators(FilterConfig(), Resources(prompts.ROOT / "vocab" / "default.tsv"))
loaded = {m: m in sys.modules for m in ("torch", "nltk", "scipy", "sklearn")}
doc = Doc("a", "Lily wanted to play with a red ball. She ran to the park and laughed with her friend Tom.",
          slots={"verb": "play", "noun": "ball", "adjective": "red"})
values = {}
for a in annotators:
    values.update(a.annotate(doc)[0])
import textstat
import torch
import thinc.compat
out = {"loaded": loaded, "fk": values["flesch_kincaid_grade"], "textstat_fk": textstat.flesch_kincaid_grade(doc.text),
       "oov_words": values["oov_words"], "present": values["required_words_present"],
       "torch_works": float(torch.ones(3).sum()), "thinc_has_torch": thinc.compat.has_torch}
print(json.dumps(out))
"""


def test_cleaning_workers_load_neither_torch_nor_nltk():
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["loaded"] == {"torch": False, "nltk": False, "scipy": False, "sklearn": False}
    assert got["fk"] == got["textstat_fk"]  # the offline dictionary gives textstat's numbers
    # spaCy lemmatized "ran" and "laughed" (in the vocabulary as "run", "laugh"); the name Tom is no slot word
    assert got["present"] is True and got["oov_words"] == ["tom"]
    assert got["torch_works"] == 3.0  # torch imports normally afterwards
    assert got["thinc_has_torch"] is False  # thinc recorded no torch (its PyTorch layers are unused here)


COMMANDS = r"""
import importlib, json, sys
for m in ("annotate", "evaluate", "generate", "io", "mixsearch", "probe", "query", "run", "sweep", "train",
          "transform", "vocab"):
    importlib.import_module("tinyschool.commands." + m)
heavy = ("torch._dynamo", "scipy.stats", "scipy.optimize", "scipy.integrate", "sklearn", "transformers", "spacy",
         "matplotlib", "ray")
print(json.dumps({m: m in sys.modules for m in heavy}))
"""


def test_commands_start_without_the_libraries_they_use_only_when_running():
    """Every command module imports without torch._dynamo (the fused cross-entropy is a custom op, not
    a torch.compiler.disable), SciPy's stats/optimize/integrate, scikit-learn, transformers, spaCy,
    matplotlib or Ray: each is seconds of the start of every command, and of every training worker,
    that never uses it. They are imported where they are used."""
    out = subprocess.run([sys.executable, "-c", COMMANDS], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert not any(loaded.values()), loaded
