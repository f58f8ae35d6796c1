"""Pacing functions: the fraction of the ordered data available at training progress p in [0, 1].

Each takes the progress x in [0, 1] through the ramp (x = min(1, p / ramp); `ramp` is the share of
training after which all data is available, T in Platanios et al. 2019) and the start fraction
c0 (the easiest c0 of the data is available from the first step), and returns a fraction in
[c0, 1] that never decreases.

Two families share some names. Ours (`exponential`, `logarithmic`, `step`) are the shapes
described beside each function. CLIMB's (Martinez et al. 2023, "CLIMB: Curriculum Learning for
Infant-inspired Model Building", BabyLM; after Hacohen & Weinshall 2019) are `climb_*`, written from
the definitions in CLIMB's `pacing_fn.py` with its `start_percent = 0`, `end_percent = ramp`,
`starting_difficulty = c0`, `max_difficulty = 1` and its growth constant c = 10:
  climb_linear / climb_quadratic / climb_root   the same as linear / quadratic / root
  climb_exponential   c0 + (1 - c0) (e^(c x) - 1) / (e^c - 1)       (slow start, steep end)
  climb_logarithmic   c0 + (1 - c0) (1 + ln(x + e^-c) / c)          (steep start, slow end)
  climb_step          c0 until the end of the ramp, then all data   (one jump, not baby steps)
"""
from __future__ import annotations

import math
from typing import Callable

from curricula.documents import CurriculumError

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


CLIMB_C = 10.0  # CLIMB's growth constant `c` for exp and log


def climb_exponential(x: float, c0: float) -> float:
    """CLIMB's `exp`: c0 + (1 - c0) (e^(c x) - 1) / (e^c - 1), c = 10."""
    return c0 + (1 - c0) * math.expm1(CLIMB_C * x) / math.expm1(CLIMB_C)


def climb_logarithmic(x: float, c0: float) -> float:
    """CLIMB's `log`: c0 + (1 - c0) (1 + ln(x + e^-c) / c), c = 10."""
    return c0 + (1 - c0) * (1 + math.log(x + math.exp(-CLIMB_C)) / CLIMB_C)


def climb_step(x: float, c0: float) -> float:
    """CLIMB's `step`: the start fraction until the end of the ramp, then everything."""
    return 1.0 if x >= 1 else c0


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
    # CLIMB's functions (Martinez et al. 2023), for results comparable with that paper
    "climb_linear": linear,
    "climb_quadratic": quadratic,
    "climb_root": root,
    "climb_exponential": climb_exponential,
    "climb_logarithmic": climb_logarithmic,
    "climb_step": climb_step,
}


def pacing_function(name: str, start: float = 0.1, ramp: float = 0.8, **kwargs) -> Callable[[float], float]:
    """The pacing `name` as a function of training progress p in [0, 1]."""
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
