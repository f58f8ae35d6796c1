"""Verify TinyGSM-style documents by running their `solution()` in the sandbox.

A document is `Problem: ...\n\nSolution:\n```python\n<code>\n```` (the form `generators.math_parse`
stores). The code runs in `filters.sandbox` (a warm pool per process); it is **verified** when it
returns a finite real number (bools, strings, None, NaN and infinities are not answers). An integer
(or Fraction) too large for a float, such as 10**400, is a finite number too: verified, with
`answer` null, `answer_too_large` true and the exact value in `answer_exact`.

Columns: `answer` (the returned number as a float), `answer_exact` (the exact decimal text of an
integer answer, "n/d" of a Fraction), `answer_too_large`, `verified`, `sandbox_status` (ok | exception | syntax |
no_solution | timeout | cpu | memory | output | blocked | crash | not_a_number | no_code),
`sandbox_error`, `runtime_s` (inside the solution, in milliseconds' precision: it is a measurement,
the one column that can differ between two runs, with a cpu/timeout status near the limits), and two difficulty measures for the curriculum:
`ast_ops` (operation nodes in the code's AST: BinOp, UnaryOp, AugAssign, BoolOp, Compare, Call) and
`loc` (lines of code, blank and comment-only lines excluded).

Self-consistency: a recipe with `samples_per_prompt = k` gets k documents per prompt (same slots,
hence the same prompt, different sampling seeds). Documents are grouped by their prompt;
`sc_samples` is the group size, `sc_answer` the most common verified answer (answers equal to 1e-6
relative count as one, answers too large for a float by their exact text; ties go to the smallest;
null when the majority answer is too large for a float), `sc_agreement` the share of the group's documents
(failed ones included) that returned it, `sc_majority` whether this document did. Groups are formed
within a batch (`annotate_batch`: one shard when the cleaning stage calls it), so a recipe keeps
`shard_size` a multiple of k; with k = 1 or a lone document the sc_* columns are null.
"""
from __future__ import annotations

import ast
import hashlib
import math
import re
from typing import Any

import pyarrow as pa
from pydantic import Field

from filters.base import Annotator, AnnotatorConfig
from filters.sandbox import Limits, SandboxPool, SandboxResult

DOC_RE = re.compile(r"^Problem:\s*(?P<problem>.*?)\n\nSolution:\n```python\n(?P<code>.*?)\n```\s*$", re.S)
OP_NODES = (ast.BinOp, ast.UnaryOp, ast.AugAssign, ast.BoolOp, ast.Compare, ast.Call)


class MathConfig(AnnotatorConfig):
    enabled: bool = Field(False, description="on for math recipes only (a story has no solution to run)")
    wall_s: float = Field(2.0, gt=0, le=60, description="wall-clock limit per solution (SIGKILL)")
    cpu_s: float = Field(1.0, gt=0, le=60, description="CPU seconds per solution (RLIMIT_CPU)")
    memory_mb: int = Field(256, ge=64, le=8192, description="address space per solution (RLIMIT_AS)")
    workers: int = Field(1, ge=1, le=64, description="sandbox workers per annotating process")
    drop_unverified: bool = Field(True, description="drop a document whose solution does not return a finite number")
    min_agreement: float | None = Field(None, ge=0, le=1, description="drop a document whose self-consistency group agrees less than this")


def split_document(text: str) -> tuple[str, str] | None:
    """(problem, code) of a stored math document, None when it is not in that form."""
    m = DOC_RE.match(text or "")
    return (m.group("problem").strip(), m.group("code")) if m else None


def ast_ops(code: str) -> int | None:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return None
    return sum(isinstance(n, OP_NODES) for n in ast.walk(tree))


def lines_of_code(code: str) -> int:
    return sum(1 for ln in code.splitlines() if ln.strip() and not ln.strip().startswith("#"))


def is_answer(res: SandboxResult) -> bool:
    if res.status != "ok":
        return False
    return (res.number is not None and math.isfinite(res.number)) or res.too_large


def _same(a: float | str, b: float | str) -> bool:
    """Two answers agree: close floats, or equal exact texts (answers too large for a float)."""
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def group_key(prompt: str) -> str:
    return hashlib.sha256(prompt.encode()).hexdigest()[:16]


def majority(answers: list[float | str | None]) -> tuple[float | str | None, int]:
    """The most common answer (close values are one answer; an answer too large for a float is its exact
    text; ties: the smallest, floats before texts) and its count."""
    buckets: list[list[float | str]] = []
    for a in answers:
        if a is None:
            continue
        for b in buckets:
            if _same(a, b[0]):
                b.append(a)
                break
        else:
            buckets.append([a])
    if not buckets:
        return None, 0
    best = min(buckets, key=lambda b: (-len(b), isinstance(b[0], str), b[0] if not isinstance(b[0], str) else 0,
                                       b[0] if isinstance(b[0], str) else ""))
    return best[0], len(best)


def self_consistency(prompts: list[str], answers: list[float | str | None]) -> list[dict[str, Any]]:
    """Per document: sc_group, sc_samples, sc_answer, sc_agreement, sc_majority (see module doc)."""
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(group_key(p), []).append(i)
    out: list[dict[str, Any]] = [{} for _ in prompts]
    for key, idx in groups.items():
        if len(idx) < 2:
            out[idx[0]] = {"sc_group": key, "sc_samples": 1, "sc_answer": None, "sc_agreement": None, "sc_majority": None}
            continue
        ans, n = majority([answers[i] for i in idx])
        for i in idx:
            a = answers[i]
            agree = ans is not None and a is not None and _same(a, ans)
            out[i] = {"sc_group": key, "sc_samples": len(idx), "sc_answer": None if isinstance(ans, str) else ans,
                      "sc_agreement": n / len(idx), "sc_majority": agree}
    return out


class MathVerifyAnnotator(Annotator):
    name = "math"
    Config = MathConfig
    columns = {
        "answer": pa.float64(), "answer_exact": pa.string(), "answer_too_large": pa.bool_(), "verified": pa.bool_(), "sandbox_status": pa.string(), "sandbox_error": pa.string(),
        "runtime_s": pa.float64(), "ast_ops": pa.int64(), "loc": pa.int64(),
        "sc_group": pa.string(), "sc_samples": pa.int64(), "sc_answer": pa.float64(), "sc_agreement": pa.float64(),
        "sc_majority": pa.bool_(),
    }

    def __init__(self, cfg, resources):
        super().__init__(cfg, resources)
        self._pool: SandboxPool | None = None

    @property
    def pool(self) -> SandboxPool:
        if self._pool is None:
            limits = Limits(wall_s=self.cfg.wall_s, cpu_s=self.cfg.cpu_s, memory_mb=self.cfg.memory_mb)
            self._pool = SandboxPool(size=self.cfg.workers, limits=limits)
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def annotate(self, doc) -> tuple[dict[str, Any], str | None]:
        return self.annotate_batch([doc])[0]

    def annotate_batch(self, docs: list) -> list[tuple[dict[str, Any], str | None]]:
        """Every document of a batch (one shard): sandbox runs in parallel, then self-consistency."""
        parts = [split_document(d.text) if not d.error else None for d in docs]
        todo = [i for i, p in enumerate(parts) if p is not None]
        results = dict(zip(todo, self.pool.map([parts[i][1] for i in todo]))) if todo else {}
        rows: list[dict[str, Any]] = []
        answers: list[float | str | None] = []
        for i, d in enumerate(docs):
            values: dict[str, Any] = {c: None for c in self.columns}
            if d.error:  # a failed request (e.g. a parse failure): nothing to run
                values.update(verified=False)
                answers.append(None)
            elif parts[i] is None:
                values.update(verified=False, sandbox_status="no_code")
                answers.append(None)
            else:
                code = parts[i][1]
                res = results[i]
                ok = is_answer(res)
                status = res.status if res.status != "ok" or ok else "not_a_number"
                err = res.error if status != "not_a_number" else f"returned {res.value_type}: {res.value}"
                values.update(answer=res.number if ok else None, answer_exact=res.exact if ok else None,
                              answer_too_large=bool(ok and res.too_large), verified=ok, sandbox_status=status,
                              sandbox_error=(err or None) and err[:300], runtime_s=round(res.runtime_s, 3),
                              ast_ops=ast_ops(code), loc=lines_of_code(code))
                # an answer too large for a float takes part by its exact text (None past 4,300 digits)
                answers.append(None if not ok else res.exact if res.too_large else res.number)
            rows.append(values)
        for values, sc in zip(rows, self_consistency([d.prompt for d in docs], answers)):
            values.update(sc)
        out = []
        for d, values in zip(docs, rows):
            reason = None
            if d.error:
                reason = None  # the generation error is reported by the stage / degenerate check
            elif values["sandbox_status"] == "no_code":
                reason = "math:no_code"
            elif not values["verified"] and self.cfg.drop_unverified:
                reason = f"math:{values['sandbox_status']}"
            elif (self.cfg.min_agreement is not None and values["sc_agreement"] is not None
                  and values["sc_agreement"] < self.cfg.min_agreement):
                reason = "math:low_agreement"
            out.append((values, reason))
        return out
