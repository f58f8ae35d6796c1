"""n-gram diversity: distinct-1/2/3 (unique word n-grams over all n-grams) and the compression ratio
(UTF-8 bytes over zlib-compressed bytes; higher means more repetitive). The seeds report that
diversity predicts learnability better than readability; thresholds default to None (annotate only).
"""
from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import Field

from filters.base import Annotator, AnnotatorConfig
from filters.ngram_batch import chunks, distinct_counts


class DiversityConfig(AnnotatorConfig):
    min_distinct_1: float | None = Field(None, ge=0, le=1)
    min_distinct_2: float | None = Field(None, ge=0, le=1)
    min_distinct_3: float | None = Field(None, ge=0, le=1)
    max_compression_ratio: float | None = Field(None, gt=0)


def distinct(sorted_ngrams: np.ndarray) -> float | None:
    s = sorted_ngrams
    return float((1 + np.count_nonzero(s[1:] != s[:-1])) / len(s)) if len(s) else None


def compression_ratio(text: str) -> float | None:
    raw = text.encode("utf-8", errors="replace")
    return len(raw) / len(zlib.compress(raw, 6)) if raw else None


class DiversityAnnotator(Annotator):
    name = "diversity"
    Config = DiversityConfig
    columns = {"distinct_1": pa.float64(), "distinct_2": pa.float64(), "distinct_3": pa.float64(), "compression_ratio": pa.float64()}

    def annotate(self, doc) -> tuple[dict[str, Any], str | None]:
        v = {f"distinct_{n}": distinct(doc.sorted_ngrams(n)) for n in (1, 2, 3)}
        v["compression_ratio"] = compression_ratio(doc.text)
        return v, self._reason(v)

    def annotate_batch(self, docs: list) -> list[tuple[dict[str, Any], str | None]]:
        """`annotate` of every document, distinct-n counted for up to 4,095 documents at a time
        with one sort per n, or taken from repetition's counts inside `ngram_batch.shared()`
        (filters/ngram_batch.py; n-grams compared on the top 52 bits of their hashes within a
        document, see there)."""
        out: list[tuple[dict[str, Any], str | None]] = []
        for _, chunk in chunks(docs):
            distinct = distinct_counts(chunk, (1, 2, 3))
            lens = np.fromiter((len(d.hashes) for d in chunk), dtype=np.int64, count=len(chunk))
            cols = {}
            for n in (1, 2, 3):
                count = np.maximum(lens - n + 1, 0)
                frac = distinct[n].astype(np.float64) / np.maximum(count, 1).astype(np.float64)
                cols[f"distinct_{n}"] = [f if c else None for f, c in zip(frac.tolist(), count.tolist())]
            for i, d in enumerate(chunk):
                v = {key: values[i] for key, values in cols.items()}
                v["compression_ratio"] = compression_ratio(d.text)
                out.append((v, self._reason(v)))
        return out

    def _reason(self, v: dict[str, Any]) -> str | None:
        c = self.cfg
        for n in (1, 2, 3):
            lo = getattr(c, f"min_distinct_{n}")
            if lo is not None and v[f"distinct_{n}"] is not None and v[f"distinct_{n}"] < lo:
                return f"diversity:distinct_{n}"
        if c.max_compression_ratio is not None and v["compression_ratio"] is not None and v["compression_ratio"] > c.max_compression_ratio:
            return "diversity:compression_ratio"
        return None
