"""Regressions from mixture weights to a target (RegMix, Liu et al. 2024): a registry of models, judged by
cross-validation (out-of-fold Spearman rho and mean absolute error), then used to rank candidates.

- `linear`  ordinary least squares on the weights (RegMix's linear model)
- `gbm`     gradient-boosted trees (scikit-learn's HistGradientBoostingRegressor; RegMix used LightGBM),
            sized for tens of proxies: small leaves, shallow trees, many small steps
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

# scikit-learn and scipy.stats are imported where they are used: together 2-3 s of the start of every
# command that imports this module otherwise


def _linear(seed: int):
    from sklearn.linear_model import LinearRegression

    return LinearRegression()


def _gbm(seed: int):
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(learning_rate=0.05, max_iter=300, max_leaf_nodes=8, min_samples_leaf=3,
                                         l2_regularization=1e-3, random_state=seed)


REGRESSORS: dict[str, Callable[[int], object]] = {"linear": _linear, "gbm": _gbm}


@dataclass
class Fit:
    name: str
    oof: np.ndarray  # out-of-fold prediction of every proxy
    rho: float  # Spearman rank correlation of out-of-fold predictions with the observed targets
    mae: float
    model: object  # fitted on all proxies

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.model.predict(X)


def cross_validate(name: str, X: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> Fit:
    """K-fold out-of-fold predictions (shuffled folds, seeded), their rho and MAE, and the model refit on all."""
    from scipy import stats as sst
    from sklearn.model_selection import KFold

    make = REGRESSORS[name]
    k = max(2, min(folds, len(y)))
    oof = np.empty(len(y))
    for train, test in KFold(k, shuffle=True, random_state=seed).split(X):
        oof[test] = make(seed).fit(X[train], y[train]).predict(X[test])
    rho = float(sst.spearmanr(oof, y).statistic) if np.std(oof) > 0 and np.std(y) > 0 else float("nan")
    return Fit(name, oof, rho, float(np.mean(np.abs(oof - y))), make(seed).fit(X, y))


def best_fit(fits: list[Fit]) -> Fit:
    """The model with the highest held-out rho (then the lower MAE)."""
    return min(fits, key=lambda f: (-(f.rho if np.isfinite(f.rho) else -2.0), f.mae))
