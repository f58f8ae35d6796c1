"""Orderings of the training documents by difficulty score (higher score = harder)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from curricula.documents import CurriculumError


def easy_to_hard(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.argsort(scores, kind="stable")


def hard_to_easy(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.argsort(-scores, kind="stable")


def random_order(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(len(scores))


ORDERINGS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "easy_to_hard": easy_to_hard,
    "hard_to_easy": hard_to_easy,
    "random": random_order,
}


def order_documents(name: str, scores: np.ndarray, seed: int) -> np.ndarray:
    if name not in ORDERINGS:
        raise CurriculumError(f"unknown ordering {name!r} (one of {', '.join(ORDERINGS)})")
    return ORDERINGS[name](np.asarray(scores, dtype=np.float64), np.random.default_rng(seed))
