"""What a mixture search optimizes: a number read back from each finished run (a registry).

- `heldout`   the held-out loss of one corpus (`target = "math"`; "main" is the experiment's corpus)
- `weighted`  a weighted mean of several corpora's held-out losses (`target = { main = 0.7, math = 0.3 }`)
- `probe`     a probe score such as BLiMP accuracy (`target = "probe:blimp"`), read by a function
              registered in PROBES (run folder -> score, higher is better); trainers.mixsearch registers
              `blimp` (trainers.probe_report.blimp_score: one paradigm per linguistics term)

Every target says which corpora's held-out sets the runs must evaluate (a corpus that is a target but
not a domain of the search is given weight 0, so the trainer evaluates it but never trains on it)
and whether higher is better. `loss(...)` is always lower-is-better (a probe score is negated).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from curricula import CurriculumError

# probe name -> function(run folder) -> score (higher is better); trainers.mixsearch registers "blimp"
PROBES: dict[str, Callable[[Path], float]] = {}


def metric_of(corpus: str) -> str:
    """The metrics.parquet name of a corpus's held-out loss."""
    return "val_loss" if corpus == "main" else f"val_loss/{corpus}"


class HeldoutTarget:
    higher_is_better = False

    def __init__(self, corpus: str):
        self.corpora = {corpus: 1.0}
        self.name = f"held-out loss of {corpus}"

    def value(self, run: Path, final: dict[str, float]) -> float:
        return sum(w * _need(final, metric_of(c), run) for c, w in self.corpora.items())

    def loss(self, run: Path, final: dict[str, float]) -> float:
        return self.value(run, final)


class WeightedTarget(HeldoutTarget):
    def __init__(self, weights: dict[str, float]):
        total = sum(weights.values())
        if total <= 0 or min(weights.values()) < 0:
            raise CurriculumError(f"mixsearch target: weights must be >= 0 and add up to more than 0 (got {weights})")
        self.corpora = {c: w / total for c, w in weights.items()}
        self.name = "weighted held-out loss (" + ", ".join(f"{c} {w:.2f}" for c, w in self.corpora.items()) + ")"


class ProbeTarget:
    higher_is_better = True
    corpora: dict[str, float] = {}

    def __init__(self, probe: str):
        if probe not in PROBES:
            raise CurriculumError(f"mixsearch target probe:{probe}: no such probe in this build "
                                  f"(registered: {', '.join(PROBES) or 'none yet'}); use a held-out loss target")
        self.probe, self.name = probe, f"{probe} score"

    def value(self, run: Path, final: dict[str, float]) -> float:
        return float(PROBES[self.probe](run))

    def loss(self, run: Path, final: dict[str, float]) -> float:
        return -self.value(run, final)


TARGETS: dict[str, Callable[..., object]] = {"heldout": HeldoutTarget, "weighted": WeightedTarget, "probe": ProbeTarget}


def make_target(spec: str | dict[str, float], sources: list[str]):
    """A target from its TOML form, checked against the experiment's corpora."""
    if isinstance(spec, str) and spec.startswith("probe:"):
        return TARGETS["probe"](spec.split(":", 1)[1])
    corpora = [spec] if isinstance(spec, str) else list(spec)
    for c in corpora:
        if c not in sources:
            raise CurriculumError(f"mixsearch target: no corpus named {c!r} (corpora: {', '.join(sources)})")
    return TARGETS["heldout"](spec) if isinstance(spec, str) else TARGETS["weighted"](dict(spec))


def _need(final: dict[str, float], metric: str, run: Path) -> float:
    if metric not in final:
        raise CurriculumError(f"{run}: metrics.parquet has no {metric!r} (the run did not evaluate that corpus)")
    return final[metric]
