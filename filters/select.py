"""Best-of-k selection: with `samples_per_prompt = k` and `select = "best"` in the recipe, the k
documents generated from one prompt (same slots, different seeds) compete, and only the one the
cleaning annotators score best is kept. The others stay in `annotated` with `selected = false` and
`drop_reason = "select:not_selected"` (when nothing else dropped them), so cost and gain can be queried.

Score, compared in this order (higher wins; ties go to the lower sample index):
 1. passes every filter (no drop reason of its own)
 2. finished (last sentence complete)
 3. every required word present
 4. lowest OOV rate
 5. least repetition (lowest top-2-gram character share) and no prompt echo
`select_score` records it as one number: 1000 * passes + 100 * finished + 10 * required + (1 - oov_rate)
- top_2gram_char_frac (higher is better).

Groups are the documents of one shard with the same prompt; keep `shard_size` a multiple of k (a
group split by a shard boundary is judged in its two parts).

This module is called from the annotate stage (one marked hook in `filters/stage.py`), so it can move
with the stage's per-shard step.
"""
from __future__ import annotations

from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

COLUMNS = {"selected": pa.bool_(), "select_score": pa.float64()}
REASON = "select:not_selected"


class SelectConfig(BaseModel):
    """`[filters.select]`; `tinyschool.recipe` fills it from the recipe's `select` and `samples_per_prompt`."""

    model_config = ConfigDict(extra="forbid")
    mode: str = Field("all", pattern="^(all|best)$", description="all: keep every sample; best: one per prompt")
    group_size: int = Field(1, ge=1, description="samples per prompt (k)")


def _num(v: Any, default: float) -> float:
    return default if v is None else float(v)


def score(reason: str | None, values: dict[str, Any]) -> tuple:
    oov = _num(values.get("oov_rate"), 0.0)
    rep = _num(values.get("top_2gram_char_frac"), 0.0)
    echo = _num(values.get("prompt_echo_frac"), 0.0)
    return (reason is None, values.get("unfinished") is False, values.get("required_words_present") is True,
            -oov, -rep - echo)


def scalar(s: tuple) -> float:
    passes, finished, required, neg_oov, neg_rep = s
    return round(1000 * passes + 100 * finished + 10 * required + (1 + neg_oov) + neg_rep, 6)


def select_best(cfg: SelectConfig, ids: list[str], prompts: list[str], cols: dict[str, list],
                reasons: list[str | None]) -> tuple[list[str | None], dict[str, list]]:
    """New reasons and the columns `selected`/`select_score` (empty when selection is off)."""
    if cfg.mode != "best" or cfg.group_size <= 1:
        return reasons, {}
    n = len(ids)
    scores = []
    for i in range(n):
        values = {c: cols[c][i] for c in ("oov_rate", "top_2gram_char_frac", "prompt_echo_frac", "unfinished",
                                          "required_words_present") if c in cols}
        scores.append(score(reasons[i], values))
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(p, []).append(i)
    selected = [False] * n
    for members in groups.values():
        best = max(members, key=lambda i: (scores[i], -i))
        selected[best] = True
    new = [r if (selected[i] or r is not None) else REASON for i, r in enumerate(reasons)]
    return new, {"selected": selected, "select_score": [scalar(s) for s in scores]}
