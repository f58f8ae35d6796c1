"""CLIMB's vocabulary curriculum (Martinez et al. 2023, "CLIMB: Curriculum Learning for Infant-inspired
Model Building", BabyLM): early in training the model sees only the most frequent tokens, and the
allowed vocabulary grows by a pacing function.

CLIMB maps tokens outside the allowed set to UNK; our byte-level BPE has no unknown token (every
byte is a token), so we take the document-level form instead: a document is available once every
one of its tokens is in the allowed set. Tokens are ranked by their frequency in the training
split (rank 0 = most frequent; ties by token id); a document's *vocabulary level* is the highest
rank among its tokens and its end-of-text token. At training progress p the allowed set is the
ceil(f(p) * V) most frequent tokens, V the number of distinct tokens seen in training, f the
curriculum's `vocabulary_pacing` function (starting at `vocabulary_start`). Documents are ordered by
level (ties in a seeded random order), so the available documents are always a prefix of the order.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from curricula.scheduler import TokenPool


def token_ranks(doc_sets: Sequence[Sequence[np.ndarray]], eot: int) -> tuple[np.ndarray, int]:
    """(rank of every token id, number of distinct tokens seen) over the given documents; every
    document counts one end-of-text token. Unseen ids rank after every seen one."""
    top = max([eot] + [int(d.max()) for docs in doc_sets for d in docs if len(d)])
    counts = np.zeros(top + 1, dtype=np.int64)
    for docs in doc_sets:
        for d in docs:
            counts += np.bincount(np.asarray(d, dtype=np.int64), minlength=top + 1)
        counts[eot] += len(docs)
    order = np.lexsort((np.arange(top + 1), -counts))  # most frequent first, ties by id
    ranks = np.empty(top + 1, dtype=np.int64)
    ranks[order] = np.arange(top + 1)
    return ranks, int((counts > 0).sum())


def vocabulary_levels(docs: Sequence[np.ndarray], ranks: np.ndarray, eot: int) -> np.ndarray:
    """The highest frequency rank among each document's tokens (its end-of-text token included)."""
    base = int(ranks[eot])
    return np.array([max(base, int(ranks[np.asarray(d, dtype=np.int64)].max()) if len(d) else base) for d in docs],
                    dtype=np.int64)


def allowed_tokens(fraction: float, n_vocab: int) -> int:
    """How many of the most frequent tokens are allowed at this share of the vocabulary."""
    return max(1, math.ceil(fraction * n_vocab - 1e-9))


class VocabularyPool(TokenPool):
    """A TokenPool of documents sorted by vocabulary level whose `limit(fraction)` reads the fraction
    as a share of the vocabulary: the documents made only of the allowed tokens (at least one window)."""

    def __init__(self, docs: Sequence[np.ndarray], index: np.ndarray, ranks: np.ndarray, n_vocab: int, eot: int,
                 seed: int, name: str = "main"):
        index = np.asarray(index, dtype=np.int64)
        levels = vocabulary_levels([docs[int(i)] for i in index], ranks, eot)
        shuffle = np.random.default_rng([seed, 0x70CAB]).permutation(len(index))
        by_level = shuffle[np.argsort(levels[shuffle], kind="stable")]  # by level, ties in a seeded order
        super().__init__(docs, index[by_level], eot, name=name)
        self.levels = levels[by_level]
        self.n_vocab = n_vocab

    def docs_allowed(self, fraction: float) -> int:
        return int(np.searchsorted(self.levels, allowed_tokens(fraction, self.n_vocab), side="left"))

    def limit(self, fraction: float, window: int) -> int:
        full = super().limit(1.0, window)  # checks that the corpus holds one window
        if fraction >= 1.0:
            return full
        return max(int(self.offsets[self.docs_allowed(fraction)]), window)
