"""GSM8K few-shot examples as TinyGSM-style Python: the `gsm8k` slot source.

A GSM8K answer is prose with calculator annotations and a final line:

    Natalia sold 48/2 = <<48/2=24>>24 clips in May.
    Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.
    #### 72

`gsm8k_to_python` turns it into the format the template asks the model for: one commented
statement per step, each result in a variable named after the quantity (the words that follow the
result, else the subject of the sentence), later steps using those variables, and a return of the
final answer:

    def solution():
        # Natalia sold 48/2 = 24 clips in May.
        clips_may = 48 / 2
        # Natalia sold 48+24 = 72 clips altogether in April and May.
        clips_altogether = 48 + clips_may
        return clips_altogether

Only examples whose converted code evaluates to the GSM8K answer are offered (about 90% of the
train set); the arithmetic is checked by a whitelist regex before it is evaluated.

Slot spec keys: `path` (the GSM8K JSONL; relative paths are tried from the working directory, then
from the repository root), `count` (examples per prompt), `max` (skip problems with more steps).
"""
from __future__ import annotations

import json
import keyword
import math
import random
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import prompts
from corpora.errors import TemplateError

CALC_RE = re.compile(r"<<([^<>=]*)=([^<>]*)>>")
NUMBER_RE = re.compile(r"\d+(?:\.\d+)?")
SAFE_EXPR_RE = re.compile(r"^[\d\s.+\-*/()%]+$")
WORD_RE = re.compile(r"[A-Za-z]+")
STOPWORDS = frozenset("""a an the of in on at to for from by with and or but so that this these those his her
their its our my your he she it they we you i is are was were be been has have had do does did will would
can could each per every all total then thus therefore because since which who what how many much more less
than as up out into over after before left now also still just only there here if when while one same
altogether""".split())


class GSM8KError(ValueError):
    pass


def _snake(words: list[str]) -> str:
    name = "_".join(w.lower() for w in words)
    name = re.sub(r"[^a-z0-9_]", "", name)
    if not name or not name[0].isalpha() or keyword.iskeyword(name):
        return ""
    return name


def _content_words(text: str, limit: int = 3) -> list[str]:
    out = []
    for w in WORD_RE.findall(text):
        if w.lower() in STOPWORDS or len(w) < 2:
            continue
        out.append(w)
        if len(out) == limit:
            break
    return out


def _name_for(line: str, calc_end: int, calc_start: int, used: set[str], step: int) -> str:
    after = line[calc_end:]
    after = re.sub(r"^\s*[\d.,]+", "", after)  # the result number itself
    after = re.split(r"[.,;:!?]|\bbecause\b|\bso\b|\bwhich\b", after, maxsplit=1)[0]
    name = _snake(_content_words(after, 2))
    if not name:
        before = re.split(r"[\d$=]", line[:calc_start], maxsplit=1)[0]
        name = _snake(_content_words(before, 3))
    if not name:
        name = f"step_{step}"
    base, k = name, 2
    while name in used:
        name = f"{base}_{k}"
        k += 1
    return name


def _num(s: str) -> float | None:
    try:
        return float(s.replace(",", "").strip())
    except ValueError:
        return None


def gsm8k_to_python(answer: str) -> str | None:
    """The GSM8K answer as a commented `solution()`; None when it cannot be converted faithfully."""
    lines = [ln.strip() for ln in answer.strip().splitlines()]
    final = next((ln[4:].strip() for ln in lines if ln.startswith("####")), None)
    target = _num(final or "")
    if target is None:
        return None
    body: list[str] = []
    used: set[str] = set()
    values: list[tuple[str, float]] = []  # (variable, value), in order
    env: dict[str, float] = {}
    step = 0
    for ln in lines:
        if ln.startswith("####") or not ln:
            continue
        calcs = list(CALC_RE.finditer(ln))
        if not calcs:
            continue
        comment = CALC_RE.sub("", ln).strip()
        body.append(f"    # {comment}")
        for m in calcs:
            expr, result = m.group(1).strip(), _num(m.group(2))
            if result is None or not SAFE_EXPR_RE.match(expr):
                return None
            step += 1
            name = _name_for(ln, m.end(), m.start(), used, step)
            used.add(name)

            def swap(nm: re.Match) -> str:
                v = float(nm.group(0))
                for var, val in reversed(values):
                    if math.isclose(val, v) and v not in (0.0, 1.0):
                        return var
                return nm.group(0)

            code_expr = NUMBER_RE.sub(swap, expr)
            code_expr = re.sub(r"\s*([+\-*/%])\s*", r" \1 ", code_expr).replace("*  *", "**").strip()
            code_expr = re.sub(r"\s+", " ", code_expr)
            try:
                value = eval(compile(code_expr, "<gsm8k>", "eval"), {"__builtins__": {}}, dict(env))  # arithmetic only (checked above)
            except Exception:
                return None
            if not isinstance(value, (int, float)) or not math.isclose(float(value), result, rel_tol=1e-6, abs_tol=1e-6):
                return None
            env[name] = value
            values.append((name, result))
            body.append(f"    {name} = {code_expr}")
    if not values:
        return None
    ret = next((var for var, val in reversed(values) if math.isclose(val, target, rel_tol=1e-9, abs_tol=1e-9)), None)
    if ret is None:
        return None
    return "def solution():\n" + "\n".join(body) + f"\n    return {ret}"


def resolve_path(path: str) -> Path:
    """A relative path is tried from the working directory, then from the repository root."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    for base in (prompts.ROOT.parent, prompts.ROOT):
        if (base / p).exists():
            return base / p
    return p


@lru_cache(maxsize=4)
def load_examples(path: str) -> tuple[dict[str, Any], ...]:
    """Every convertible GSM8K row: {"question", "code", "answer", "steps"}."""
    p = resolve_path(path)
    if not p.exists():
        where = " and ".join(dict.fromkeys(str(d) for d in (Path.cwd(), prompts.ROOT.parent)))
        raise GSM8KError(f"gsm8k examples: file not found: {path} (looked in {where}); "
                         "set the path of the `gsm8k` slot (recipe: [slot_overrides.examples] path = ...)")
    out = []
    with open(p, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                q, a = row["question"], row["answer"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise GSM8KError(f"{p}:{line_no}: not a GSM8K row (needs JSON with 'question' and 'answer')") from None
            code = gsm8k_to_python(a)
            if code is None:
                continue
            out.append({"question": q.strip(), "code": code, "answer": a.split("####")[-1].strip(),
                        "steps": code.count("\n    # "), "line": line_no})
    if not out:
        raise GSM8KError(f"{p}: no usable GSM8K examples")
    return tuple(out)


@lru_cache(maxsize=16)
def _with_steps(path: str, lo: int, hi: int) -> tuple[dict[str, Any], ...]:
    rows = load_examples(path)
    return tuple(r for r in rows if lo <= r["steps"] <= hi) or rows


def slot_gsm8k(rng: random.Random, spec, vocab) -> list[dict[str, Any]]:
    """`count` GSM8K examples (question + converted code), at most `max` steps each when set."""
    if not spec.path:
        raise TemplateError("a `gsm8k` slot needs `path`")
    try:
        rows = load_examples(spec.path)
    except GSM8KError as e:
        raise TemplateError(str(e)) from None
    if spec.max is not None:
        rows = _with_steps(spec.path, spec.min, spec.max)
    picked = [rows[i] for i in rng.sample(range(len(rows)), min(spec.count, len(rows)))]
    return [{"question": r["question"], "code": r["code"]} for r in picked]
