"""`FilterConfig`: the recipe's `[filters]` table, every threshold of the cleaning stage.

One sub-table per registered annotator (`[filters.length]`, `[filters.repetition]`...; its keys
and defaults are that annotator's `Config`), plus `[filters.dedup]` and `[filters.decontam]`.
The annotator tables are generated from the registry, so a new annotator brings its own table.
Unknown keys are refused (extra="forbid").
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from filters.registry import ANNOTATORS, annotator_class
from filters.select import SelectConfig


class DedupConfig(BaseModel):
    """Exact dedup on normalized text, then MinHash LSH near-dedup over word n-gram shingles."""

    model_config = ConfigDict(extra="forbid")
    exact: bool = True
    near: bool = True
    threshold: float = Field(0.55, gt=0, lt=1, description="Jaccard similarity the LSH band/row split is tuned for (below verify_jaccard, so that pairs above it are almost never missed: 21 bands x 6 rows at 128 permutations find 99.8% of pairs at Jaccard 0.8)")
    verify_jaccard: float | None = Field(0.65, ge=0, le=1, description="two documents are near duplicates when their signatures agree on this share of positions (the MinHash estimate of Jaccard similarity); None: every LSH candidate pair")
    num_perm: int = Field(128, ge=16, le=1024)
    shingle_size: int = Field(5, ge=1, le=32, description="words per shingle")
    seed: int = 1
    false_positive_weight: float = Field(0.5, ge=0, le=1)


class EvalSet(BaseModel):
    """An eval set to decontaminate against: JSONL or Parquet, the text field, optionally an id field
    (default: the row number, counted from 0)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    path: str
    field: str = "text"
    id_field: str | None = None


class DecontamConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ngram: int = Field(13, ge=3, le=64, description="a document sharing one word n-gram of this size with an eval item is dropped")
    eval_sets: list[EvalSet] = Field(default_factory=list)


def _build() -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for name in ANNOTATORS:
        cls = annotator_class(name).Config
        fields[name] = (cls, Field(default_factory=cls))
    fields["dedup"] = (DedupConfig, Field(default_factory=DedupConfig))
    fields["decontam"] = (DecontamConfig, Field(default_factory=DecontamConfig))
    fields["select"] = (SelectConfig, Field(default_factory=SelectConfig))  # best-of-k (filters/select.py)
    fields["language"] = (str, Field("en", description="the corpus's language: the default of every annotator's own `language`"))
    return create_model("FilterConfig", __config__=ConfigDict(extra="forbid"), __base__=None,
                        __doc__="Every threshold of the cleaning stage (the recipe's [filters] table).",
                        __validators__={"_language": model_validator(mode="after")(_spread_language)}, **fields)


def _spread_language(cfg):
    """`[filters] language = "hi"` reaches every annotator that has a `language` and was not given its own."""
    for name in ANNOTATORS:
        sub = getattr(cfg, name)
        if "language" in type(sub).model_fields and "language" not in sub.model_fields_set:
            object.__setattr__(sub, "language", cfg.language)
    return cfg


FilterConfig = _build()
