"""The batch scheduler: which token windows form the batch at each step.

Every batch is a pure function of (seed, step): the pool of documents available at step t comes
from the pacing function, the context length from the sequence-length pacing, the mixture weights
from the stage of training, and the window positions from a random generator seeded with
(seed, step). Resuming mid-run is therefore just starting from another step, and the same seed
always gives the same batches.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from curricula.documents import CurriculumError


class TokenPool:
    """Documents' tokens concatenated in curriculum order (each followed by the end-of-text token).

    The pool at fraction f is the first ceil(f * docs) documents: the easiest ones for an
    easy-to-hard ordering.
    """

    def __init__(self, docs: Sequence[np.ndarray], order: np.ndarray, eot: int, name: str = "main"):
        self.name = name
        parts, lengths = [], []
        for i in order:
            d = np.asarray(docs[int(i)], dtype=np.int32)
            parts.append(d)
            parts.append(np.array([eot], dtype=np.int32))
            lengths.append(len(d) + 1)
        self.tokens = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
        self.offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.n_docs = len(lengths)

    def limit(self, fraction: float, window: int) -> int:
        """Tokens available at this fraction, at least one full window."""
        if len(self.tokens) < window:
            raise CurriculumError(f"corpus {self.name!r} has {len(self.tokens)} tokens, fewer than one window of {window}")
        n = max(1, math.ceil(fraction * self.n_docs - 1e-9))
        lim = int(self.offsets[min(n, self.n_docs)])
        return max(lim, window)


@dataclass
class MixtureStage:
    until: float  # progress in (0, 1] at which this stage ends
    weights: dict[str, float]


@dataclass
class Scheduler:
    pools: dict[str, TokenPool]
    batch_size: int
    context: int
    total_steps: int
    seed: int
    pacing: Callable[[float], float] = lambda p: 1.0
    context_pacing: Callable[[float], float] | None = None  # fraction of `context` at progress p
    min_context: int = 16
    stages: list[MixtureStage] = field(default_factory=list)

    def __post_init__(self):
        if not self.pools:
            raise CurriculumError("the scheduler needs at least one corpus")
        names = list(self.pools)
        for s in self.stages:
            unknown = set(s.weights) - set(names)
            if unknown:
                raise CurriculumError(f"mixture stage until={s.until}: unknown corpus {sorted(unknown)[0]!r} (known: {', '.join(names)})")
            if sum(s.weights.values()) <= 0:
                raise CurriculumError(f"mixture stage until={s.until}: weights must add up to more than 0")
        self.stages = sorted(self.stages, key=lambda s: s.until)
        self._check_pools()

    def _check_pools(self) -> None:
        for pool in self.pools.values():
            pool.limit(1.0, self.context + 1)  # every corpus must hold one full window

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.context

    def progress(self, step: int) -> float:
        return step / max(1, self.total_steps)

    def context_at(self, step: int) -> int:
        if self.context_pacing is None:
            return self.context
        t = int(round(self.context * self.context_pacing(self.progress(step)) / 8)) * 8
        return int(min(self.context, max(self.min_context, t)))

    def weights_at(self, step: int) -> dict[str, float]:
        p = self.progress(step)
        for s in self.stages:
            if p < s.until:
                return s.weights
        return self.stages[-1].weights if self.stages else {n: 1.0 for n in self.pools}

    def describe(self, step: int) -> dict[str, float]:
        return {"pool_fraction": float(self.pacing(self.progress(step))), "context": self.context_at(step)}

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets) for this step, int64, contiguous; equal tokens per step at any context."""
        T = self.context_at(step)
        B = max(1, self.tokens_per_step // T)
        rng = np.random.default_rng([self.seed, step])
        names = list(self.pools)
        if len(names) == 1:
            counts = {names[0]: B}
        else:
            w = self.weights_at(step)
            probs = np.array([w.get(n, 0.0) for n in names], dtype=np.float64)
            picks = rng.choice(len(names), size=B, p=probs / probs.sum())
            counts = {n: int((picks == i).sum()) for i, n in enumerate(names)}
        frac = self.pacing(self.progress(step))
        ramp = np.arange(T + 1, dtype=np.int64)
        rows = []
        for name, n in counts.items():
            if n == 0:
                continue
            pool = self.pools[name]
            lim = pool.limit(frac, T + 1)
            starts = rng.integers(0, lim - T, size=n)
            rows.append(pool.tokens[starts[:, None] + ramp])
        arr = torch.from_numpy(np.concatenate(rows).astype(np.int64))
        return arr[:, :-1].contiguous(), arr[:, 1:].contiguous()
