"""The scaling law of a size x data sweep: L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022).

Fitted as Chinchilla's approach 3: log L = LSE(a - alpha log N, b - beta log D, e) with A = e^a,
B = e^b, E = e^e, a Huber loss on the log residuals (delta 1e-3) minimized from a grid of starting
points (scipy.optimize.least_squares); intervals from a bootstrap over the runs (each refit warm-started
from the full fit), 2.5th-97.5th percentiles.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

# scipy (~1 s to import) is imported where it is used

PARAMS = ("E", "A", "alpha", "B", "beta")


def _log_pred(theta: np.ndarray, logN: np.ndarray, logD: np.ndarray) -> np.ndarray:
    from scipy.special import logsumexp

    a, alpha, b, beta, e = theta
    return logsumexp(np.stack([a - alpha * logN, b - beta * logD, np.full_like(logN, e)]), axis=0)


def _jac(theta: np.ndarray, logN: np.ndarray, logD: np.ndarray) -> np.ndarray:
    from scipy.special import logsumexp

    a, alpha, b, beta, e = theta
    z = np.stack([a - alpha * logN, b - beta * logD, np.full_like(logN, e)])
    s = np.exp(z - logsumexp(z, axis=0))  # softmax: d LSE / d z
    return np.stack([s[0], -s[0] * logN, s[1], -s[1] * logD, s[2]], axis=1)


def _solve(theta0: np.ndarray, logN: np.ndarray, logD: np.ndarray, logL: np.ndarray):
    from scipy.optimize import least_squares

    return least_squares(lambda t: _log_pred(t, logN, logD) - logL, theta0, jac=lambda t: _jac(t, logN, logD),
                         loss="huber", f_scale=1e-3, bounds=([-20, 0, -20, 0, -10], [60, 3, 60, 3, 10]), method="trf",
                         max_nfev=200)


@dataclass
class ScalingFit:
    E: float
    A: float
    alpha: float
    B: float
    beta: float
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    n_points: int = 0
    rmse_log: float = float("nan")

    def predict(self, N, D) -> np.ndarray:
        return self.E + self.A / np.asarray(N, dtype=float) ** self.alpha + self.B / np.asarray(D, dtype=float) ** self.beta

    def as_dict(self) -> dict[str, float]:
        return {p: getattr(self, p) for p in PARAMS}


def _theta_to_fit(t: np.ndarray) -> dict[str, float]:
    a, alpha, b, beta, e = t
    return {"E": float(np.exp(e)), "A": float(np.exp(a)), "alpha": float(alpha), "B": float(np.exp(b)), "beta": float(beta)}


def fit_scaling(N, D, L, bootstrap: int = 200, seed: int = 0) -> ScalingFit:
    """Fit L(N, D) to runs with N parameters, D training tokens and final loss L."""
    N, D, L = (np.asarray(x, dtype=float) for x in (N, D, L))
    if len(L) < 6 or len(set(N.tolist())) < 2 or len(set(D.tolist())) < 2:
        raise ValueError(f"a scaling fit needs at least 2 model sizes, 2 token budgets and 6 runs (got {len(set(N.tolist()))} sizes, "
                         f"{len(set(D.tolist()))} budgets, {len(L)} runs)")
    logN, logD, logL = np.log(N), np.log(D), np.log(L)
    best = None
    for a, alpha, b, beta, e in itertools.product([0, 5, 10], [0.2, 0.6], [0, 5, 10], [0.2, 0.6], [np.log(L.min()) - 0.5]):
        r = _solve(np.array([a, alpha, b, beta, e], dtype=float), logN, logD, logL)
        if best is None or r.cost < best.cost:
            best = r
    fit = ScalingFit(**_theta_to_fit(best.x), n_points=len(L),
                     rmse_log=float(np.sqrt(np.mean((_log_pred(best.x, logN, logD) - logL) ** 2))))
    if bootstrap:
        rng = np.random.default_rng(seed)
        draws = []
        for _ in range(bootstrap):
            i = rng.integers(0, len(L), size=len(L))
            if len(set(N[i].tolist())) < 2 or len(set(D[i].tolist())) < 2:
                continue
            draws.append(_theta_to_fit(_solve(best.x, logN[i], logD[i], logL[i]).x))
        for p in PARAMS:
            v = np.array([d[p] for d in draws])
            fit.intervals[p] = (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5)))
    return fit
