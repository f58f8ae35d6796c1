"""Split a TinyGSM-style completion into the problem text and the Python code.

The model is asked for `Problem: <text>` then a fenced `solution()`; small models drift, so the
parser accepts: a ```python (or bare ```) fence, closed or cut off by the token limit; or no fence
at all, the code then being the `def solution():` block (with any imports just before it) up to the
first unindented line that is not code. The problem is the text before the code, after the last
`Problem:` marker, up to a `Solution:`/`Answer:` label or the first blank line (what follows is
the model's own reasoning).

A completion without both a problem (at least MIN_PROBLEM_WORDS words) and a `def solution(` is a
failed row: `postprocess` sets `error` ("parse: <reason>: <start of the completion>") and
`error_kind = "parse"`. A parsed completion is stored in one canonical form (`to_document`), which
`filters.math_verify` splits again:

    Problem: <problem>

    Solution:
    ```python
    <code>
    ```
"""
from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, replace

from generators.base import Completion

MIN_PROBLEM_WORDS = 6
FENCE_RE = re.compile(r"```[ \t]*(?:python|py|Python)?[ \t]*\n(.*?)(?:```|\Z)", re.S)
DEF_RE = re.compile(r"^[ \t]*def\s+solution\s*\(", re.M)
CODE_START_RE = re.compile(r"^(?:import |from \S+ import |def |@|#)")
PROBLEM_MARK_RE = re.compile(r"(?:^|\n)\s*\**(?:problem|question)\**\s*(?:\d+\s*)?:\**", re.I)
TRAILING_LABEL_RE = re.compile(r"\s*\**(?:solution|answer|python(?: code)?|code)\**\s*:?\**\s*$", re.I)
SOLUTION_LABEL_RE = re.compile(r"(?:^|\n)\s*\**(?:solution|answer|step 1|python(?: code)?)\**\s*:", re.I)
CHAT_TOKENS_RE = re.compile(r"<\|[a-z_]+\|>")


class ParseError(ValueError):
    pass


@dataclass(frozen=True)
class ParsedMath:
    problem: str
    code: str

    def document(self) -> str:
        return to_document(self.problem, self.code)


def to_document(problem: str, code: str) -> str:
    return f"Problem: {problem}\n\nSolution:\n```python\n{code}\n```"


def _code_without_fence(text: str) -> tuple[int, str] | None:
    m = DEF_RE.search(text)
    if m is None:
        return None
    lines = text[m.start():].splitlines()
    # imports right above the def belong to the code
    before = text[:m.start()].splitlines()
    head: list[str] = []
    while before and re.match(r"^(?:import |from \S+ import )", before[-1].strip()):
        head.insert(0, before.pop().strip())
    body = [lines[0]]
    for ln in lines[1:]:
        if ln.strip() and not ln[:1].isspace() and not CODE_START_RE.match(ln):
            break
        body.append(ln)
    start = len("\n".join(before)) + (1 if before else 0)
    return start, "\n".join(head + body)


def _find_code(text: str) -> tuple[int, str]:
    for m in FENCE_RE.finditer(text):
        if DEF_RE.search(m.group(1)):
            return m.start(), m.group(1)
    got = _code_without_fence(text)
    if got is None:
        if "```" in text or "def " in text:
            raise ParseError("no solution() function in the code")
        raise ParseError("no code")
    return got


def _clean_problem(text: str) -> str:
    marks = list(PROBLEM_MARK_RE.finditer(text))
    if marks:
        text = text[marks[-1].end():]
    # what follows a solution label or the first blank line is the model's reasoning, not the problem
    label = SOLUTION_LABEL_RE.search(text)
    if label:
        text = text[:label.start()]
    text = re.split(r"\n\s*\n", text.strip(), maxsplit=1)[0]
    text = TRAILING_LABEL_RE.sub("", text.strip())
    text = re.sub(r"[ \t]*\n[ \t]*", "\n", text).strip()
    return re.sub(r"[ \t]+", " ", text)


def parse_completion(text: str) -> ParsedMath:
    """The problem and the code of a completion; ParseError says what is missing."""
    text = CHAT_TOKENS_RE.sub("", text or "").replace("\r\n", "\n")
    start, code = _find_code(text)
    code = textwrap.dedent(code).strip("\n")
    code = "\n".join(ln.rstrip() for ln in code.splitlines())
    problem = _clean_problem(text[:start])
    n_words = len(problem.split())
    if n_words < MIN_PROBLEM_WORDS:
        raise ParseError(f"no problem text before the code ({n_words} words)" if n_words else "no problem text")
    return ParsedMath(problem=problem, code=code)


def postprocess(item, c: Completion) -> Completion:
    """The runner's hook: a parsed completion becomes the canonical document; otherwise a failed row."""
    try:
        parsed = parse_completion(c.text)
    except ParseError as e:
        snippet = re.sub(r"\s+", " ", c.text.strip())[:160]
        return replace(c, error=f"parse: {e}: {snippet!r}", error_kind="parse")
    return replace(c, text=parsed.document())
