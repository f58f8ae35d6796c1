"""LLM-as-judge evaluation of a trained run: parse and check the judge's answers, aggregate scores.

The judge itself (an LLM backend) is passed in by the composition root as a function, so this
module stays free of backends: `ask(list of JudgeAsk) -> list of raw answers (str) or errors`.
Scores follow TinyStories' GPT-Eval (grammar, creativity, consistency, 1-10, plus an age group)
with plot completeness added.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Callable, Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from curricula import load_documents, split_heldout

CRITERIA = ("grammar", "creativity", "consistency", "plot")


class JudgeScores(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grammar: int = Field(ge=1, le=10)
    creativity: int = Field(ge=1, le=10)
    consistency: int = Field(ge=1, le=10)
    plot: int = Field(ge=1, le=10)
    age_group: Literal["A", "B", "C", "D", "E", "F"] | None = None

    @property
    def overall(self) -> float:
        return sum(getattr(self, c) for c in CRITERIA) / len(CRITERIA)


_OBJECT = re.compile(r"\{.*?\}", re.S)


def parse_answer(raw: str) -> JudgeScores:
    """The first JSON object in the answer, validated. Raises ValueError naming the problem."""
    text = raw.strip()
    if not text.endswith("}") and text.count("{") > text.count("}"):
        text += "}"  # the stop string `}` is cut from the answer
    m = _OBJECT.search(text)
    if not m:
        raise ValueError(f"no JSON object in the answer: {raw[:80]!r}")
    try:
        obj = json.loads(m.group(0))
    except json.JSONDecodeError as e:
        raise ValueError(f"invalid JSON ({e.msg}): {m.group(0)[:80]!r}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"the answer is not a JSON object: {m.group(0)[:80]!r}")
    if obj.get("age_group") not in (None, "A", "B", "C", "D", "E", "F"):
        obj = {**obj, "age_group": None}  # the age guess is secondary: a bad one does not void the grades
    try:
        return JudgeScores.model_validate(obj)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "answer"
        raise ValueError(f"{loc}: {err['msg']}") from None


@dataclass(frozen=True)
class JudgeAsk:
    key: str  # what is graded (completion id or reference id)
    beginning: str
    completion: str
    seed: int


@dataclass
class Graded:
    key: str
    scores: JudgeScores | None
    attempts: int
    raw_answers: list[str]
    error: str | None


def grade(asks: Sequence[JudgeAsk], ask: Callable[[Sequence[JudgeAsk]], list[tuple[str | None, str | None]]],
          max_attempts: int = 3) -> list[Graded]:
    """Ask the judge; an invalid answer is asked again (another seed) up to `max_attempts` times.

    `ask` returns, per item, (raw answer, None) or (None, transport error)."""
    state = {a.key: Graded(a.key, None, 0, [], None) for a in asks}
    pending = list(asks)
    for attempt in range(max_attempts):
        if not pending:
            break
        batch = [JudgeAsk(a.key, a.beginning, a.completion, a.seed + 7919 * attempt) for a in pending]
        answers = ask(batch)
        again = []
        for a, (raw, err) in zip(pending, answers):
            g = state[a.key]
            g.attempts += 1
            if err is not None:
                g.raw_answers.append("")
                g.error = err
                again.append(a)
                continue
            g.raw_answers.append(raw or "")
            try:
                g.scores = parse_answer(raw or "")
                g.error = None
            except ValueError as e:
                g.error = f"invalid answer: {e}"
                again.append(a)
        pending = again
    return [state[a.key] for a in asks]


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float, int]:
    """Mean and a t-based confidence interval (lo, hi) and n; NaNs when empty."""
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], dtype=float)
    n = len(v)
    if n == 0:
        return (math.nan, math.nan, math.nan, 0)
    m = float(v.mean())
    if n == 1:
        return (m, math.nan, math.nan, 1)
    from scipy import stats

    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * v.std(ddof=1) / math.sqrt(n))
    return (m, m - half, m + half, n)


def agreement(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Agreement of two judges on the same items: Spearman's rho, mean absolute difference,
    and the share of items whose scores are within one point."""
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    if len(x) < 3:
        return {"n": float(len(x)), "spearman": math.nan, "mean_abs_diff": math.nan, "within_1": math.nan}
    from scipy import stats

    rho = stats.spearmanr(x, y).statistic if np.std(x) > 0 and np.std(y) > 0 else math.nan
    return {"n": float(len(x)), "spearman": float(rho), "mean_abs_diff": float(np.abs(x - y).mean()),
            "within_1": float((np.abs(x - y) <= 1).mean())}


EXPECTED_ORDER = ("good", "shuffled", "repeated")  # good must beat both damaged kinds


def sanity_check(kind_scores: dict[str, list[float]]) -> tuple[bool, str]:
    """Did the judge rank good stories above shuffled-sentence and repeated-phrase ones?"""
    means = {k: (float(np.mean(v)) if v else math.nan) for k, v in kind_scores.items()}
    good = means.get("good", math.nan)
    worse = [k for k in EXPECTED_ORDER[1:] if k in means]
    if math.isnan(good) or not worse or any(math.isnan(means[k]) for k in worse):
        return False, "not enough valid answers on the reference texts to check the judge"
    failed = [k for k in worse if not good > means[k]]
    detail = ", ".join(f"{k} {means[k]:.2f}" for k in EXPECTED_ORDER if k in means)
    if failed:
        return False, f"FLAGGED: the judge did not rank good stories above {' and '.join(failed)} ({detail})"
    return True, f"passed: good stories ranked above shuffled and repeated ones ({detail})"


def beginnings_from_corpus(corpus: str, count: int, heldout: float = 0.1, found: dict | None = None) -> list[dict]:
    """Story beginnings from held-out documents (the same hash split the trainer uses): the first
    sentences of each, cut before the story's middle, so a model never saw them in training.
    `found`, when given, receives the counts that explain a short answer: documents, held_out, too_short."""
    table, _ = load_documents(corpus)
    ids = table["id"].to_pylist()
    texts = table["text"].to_pylist()
    mask = split_heldout(ids, heldout, seed=0)
    out = []
    counts = {"documents": len(ids), "held_out": int(mask.sum()), "too_short": 0}
    if found is not None:
        found.update(counts)
    for i in sorted(np.flatnonzero(mask), key=lambda k: ids[k]):
        sentences = re.split(r"(?<=[.!?])\s+", texts[i].strip())
        if len(sentences) < 3:
            if found is not None:
                found["too_short"] += 1
            continue
        keep = max(1, min(3, len(sentences) // 3))
        out.append({"id": f"heldout-{ids[i]}", "text": " ".join(sentences[:keep]), "source_id": ids[i]})
        if len(out) >= count:
            break
    return out


def judge_section(rows: list[dict], curricula: Sequence[str], baseline: str | None = None) -> tuple[list[str], list[list[str]]]:
    """Markdown lines for the ablation report, and table rows for the terminal, from judge rows
    (each with `curriculum`, `seed`, `judge`, `kind`, the criteria and `overall`)."""
    labels = sorted({r["judge"] for r in rows})
    md = ["## Judge scores", "",
          "A judge LLM graded story completions of each run (1-10; TinyStories' GPT-Eval criteria plus plot "
          "completeness). Means over all graded completions of all seeds, with 95% t-intervals.", ""]
    table_rows: list[list[str]] = []
    for label in labels:
        mine = [r for r in rows if r["judge"] == label]
        md += [f"### Judge `{label}`", "", "| curriculum | graded | valid | " + " | ".join(CRITERIA) + " | overall |",
               "|---|---|---|" + "---|" * (len(CRITERIA) + 1)]
        for cur in curricula:
            comp = [r for r in mine if r["curriculum"] == cur and r["kind"] == "completion"]
            cells = []
            for c in (*CRITERIA, "overall"):
                m, lo, hi, n = mean_ci([r[c] for r in comp if r[c] is not None])
                cells.append("n/a" if n == 0 else (f"{m:.2f}" if n < 2 else f"{m:.2f} [{lo:.2f}, {hi:.2f}]"))
            valid = sum(1 for r in comp if r["overall"] is not None)
            md.append(f"| {cur} | {len(comp)} | {valid} | " + " | ".join(cells) + " |")
            table_rows.append([label, cur, f"{valid}/{len(comp)}", *cells])
        kinds: dict[str, list[float]] = {}
        seen: set[str] = set()
        for r in mine:
            if r["kind"] != "completion" and r["overall"] is not None and r["key"] not in seen:
                seen.add(r["key"])  # every run grades the same references: count each once
                kinds.setdefault(r["kind"], []).append(r["overall"])
        ok, msg = sanity_check(kinds)
        md += ["", f"Sanity check ({', '.join(EXPECTED_ORDER)} reference texts): {msg}", ""]
    if len(labels) >= 2:
        md += ["### Agreement between judges", "", "| judges | items | Spearman rho | mean abs. difference | within 1 point |",
               "|---|---|---|---|---|"]
        for i in range(len(labels)):
            for j in range(i + 1, len(labels)):
                a = {(r["curriculum"], r["seed"], r["key"]): r["overall"] for r in rows if r["judge"] == labels[i]}
                b = {(r["curriculum"], r["seed"], r["key"]): r["overall"] for r in rows if r["judge"] == labels[j]}
                keys = sorted(k for k in a if k in b and a[k] is not None and b[k] is not None)
                ag = agreement([a[k] for k in keys], [b[k] for k in keys])
                md.append(f"| {labels[i]} vs {labels[j]} | {int(ag['n'])} | {ag['spearman']:.2f} | "
                          f"{ag['mean_abs_diff']:.2f} | {ag['within_1']:.0%} |")
        md.append("")
    md += ["Judge prompts, raw answers and scores: `*/seed*/judge.parquet`.", ""]
    return md, table_rows
