"""Pacing functions: the fraction of the ordered data available at training progress p in [0, 1].

Each takes the progress x in [0, 1] through the ramp (x = min(1, p / ramp); `ramp` is the share of
training after which all data is available, T in Platanios et al. 2019) and the start fraction
c0 (the easiest c0 of the data is available from the first step), and returns a fraction in
[c0, 1] that never decreases.
"""
from __future__ import annotations

import math
from typing import Callable

Pacing = Callable[..., float]


def constant(x: float, c0: float) -> float:
    return 1.0  # no curriculum: all data from the start (the random baseline)


def linear(x: float, c0: float) -> float:
    return c0 + (1 - c0) * x


def root(x: float, c0: float) -> float:
    return c0 + (1 - c0) * math.sqrt(x)


def quadratic(x: float, c0: float) -> float:
    return c0 + (1 - c0) * x * x


def exponential(x: float, c0: float) -> float:
    return max(c0, 1e-6) ** (1 - x)  # geometric growth from c0 to 1


def logarithmic(x: float, c0: float) -> float:
    return c0 + (1 - c0) * math.log1p(9 * x) / math.log(10)


def step(x: float, c0: float, stages: int = 4) -> float:
    """Baby steps (Spitkovsky et al. 2010): add one difficulty bucket at a time."""
    return c0 + (1 - c0) * math.floor(x * stages) / stages


def competence(x: float, c0: float) -> float:
    """Platanios et al. 2019, square-root competence: c(t) = min(1, sqrt(t(1-c0^2)/T + c0^2))."""
    return min(1.0, math.sqrt(x * (1 - c0 * c0) + c0 * c0))


PACING: dict[str, Pacing] = {
    "none": constant,
    "linear": linear,
    "root": root,
    "quadratic": quadratic,
    "exponential": exponential,
    "logarithmic": logarithmic,
    "step": step,
    "competence": competence,
}


def pacing_function(name: str, start: float = 0.1, ramp: float = 0.8, **kwargs) -> Callable[[float], float]:
    """The pacing `name` as a function of training progress p in [0, 1]."""
    from curricula.documents import CurriculumError

    if name not in PACING:
        raise CurriculumError(f"unknown pacing function {name!r} (one of {', '.join(PACING)})")
    if not 0 < start <= 1:
        raise CurriculumError(f"pacing start fraction must be in (0, 1] (got {start})")
    if not 0 < ramp <= 1:
        raise CurriculumError(f"pacing ramp must be in (0, 1] (got {ramp})")
    fn = PACING[name]

    def pace(p: float) -> float:
        x = min(1.0, max(0.0, p) / ramp)
        return min(1.0, max(start if name != "none" else 1.0, fn(x, start, **kwargs)))

    return pace
