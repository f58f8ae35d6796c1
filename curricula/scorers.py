"""Difficulty scorers: a table of documents in, one float per document out (higher = harder).

A scorer is one small class plus one line in SCORERS. The scores are written as columns
(`score_<name>`) of the run's scores.parquet, so they can be queried beside the corpus.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curricula.documents import CurriculumError


class ColumnScorer:
    """Any numeric column of the corpus: readability grade, word count, n-gram diversity, OOV rate..."""

    def __init__(self, column: str, invert: bool = False):
        self.column, self.invert = column, invert
        self.name = f"{'-' if invert else ''}{column}"

    def score(self, table: pa.Table) -> np.ndarray:
        if self.column not in table.column_names:
            numeric = [f.name for f in table.schema if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)]
            raise CurriculumError(
                f"scorer column: the corpus has no column {self.column!r} "
                f"(numeric columns: {', '.join(numeric) or 'none'}; annotation columns appear once the corpus is cleaned)")
        col = table[self.column]
        if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_boolean(col.type)):
            raise CurriculumError(f"scorer column: column {self.column!r} is {col.type}, not numeric")
        values = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
        values = np.where(np.isnan(values), np.nanmedian(values) if np.isfinite(values).any() else 0.0, values)
        return -values if self.invert else values


_WORD = re.compile(r"[a-z']+")


@lru_cache(maxsize=200_000)
def _zipf(word: str) -> float:
    from wordfreq import zipf_frequency

    return zipf_frequency(word, "en")


class WordRarityScorer:
    """Mean rarity of a document's words: 8 minus the wordfreq Zipf frequency (unknown words count 8)."""

    name = "word_rarity"

    def score(self, table: pa.Table) -> np.ndarray:
        out = np.empty(table.num_rows)
        for i, text in enumerate(table["text"].to_pylist()):
            words = _WORD.findall((text or "").lower())
            out[i] = float(np.mean([8.0 - _zipf(w) for w in words])) if words else 8.0
        return out


class LengthScorer:
    """Document length in characters: a cheap proxy when no annotation is present."""

    name = "length"

    def score(self, table: pa.Table) -> np.ndarray:
        return pc.utf8_length(table["text"]).to_numpy(zero_copy_only=False).astype(np.float64)


class ModelLossScorer:
    """Per-document loss under a reference model trained first (self-paced / surprisal curricula).

    The model lives in `trainers`; it is handed in as `doc_loss(texts) -> losses`, so curricula
    never imports the trainer.
    """

    name = "model_loss"

    def __init__(self, doc_loss: Callable[[Sequence[str]], Sequence[float]] | None = None):
        self.doc_loss = doc_loss

    def score(self, table: pa.Table) -> np.ndarray:
        if self.doc_loss is None:
            raise CurriculumError("scorer model_loss: needs a reference model (the trainer trains one first)")
        return np.asarray(self.doc_loss(table["text"].to_pylist()), dtype=np.float64)


SCORERS: dict[str, Callable[..., object]] = {
    "column": ColumnScorer,
    "word_rarity": WordRarityScorer,
    "length": LengthScorer,
    "model_loss": ModelLossScorer,
}


def make_scorer(name: str, **options):
    if name not in SCORERS:
        raise CurriculumError(f"unknown scorer {name!r} (one of {', '.join(SCORERS)})")
    try:
        return SCORERS[name](**options)
    except TypeError as e:
        raise CurriculumError(f"scorer {name}: bad options {options} ({e})") from None
