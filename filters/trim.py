"""`trim_unfinished`: a story whose last sentence is unfinished, because the length limit cut it
(`finish_reason = "length"`) or because the model stopped mid-sentence (a small model's "Choose
your story:" tail), is cut back to its last complete sentence, when what is left still meets the
length bounds (`[filters.length] min_words`), instead of being dropped as `degenerate:unfinished`.

The annotate stage calls `trim_docs` before the annotators run (they judge the trimmed text), records
the characters removed in the column `trimmed_chars` (0: not trimmed; null: not eligible) and writes
the trimmed text to `annotated`/`clean`; `raw` keeps the model's text as it was.
"""
from __future__ import annotations

import re

import pyarrow as pa

from filters.degenerate import is_unfinished
from filters.text import WORD_RE, Doc

# the end of a sentence: .!? (or an ellipsis) and any closing quotes/brackets after it
_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s|$)")
COLUMN = "trimmed_chars"


def trim_to_sentence(text: str) -> str | None:
    """The text up to its last complete sentence, or None when it has none."""
    last = None
    for m in _END.finditer(text):
        last = m.end()
    return text[:last].rstrip() if last else None


def trim_docs(enabled: bool, min_words: int, docs: list[Doc]) -> tuple[list[Doc], list[int | None], list[str | None]]:
    """(docs, trimmed_chars, new_text): trimmed documents replaced by their trimmed version."""
    chars: list[int | None] = []
    texts: list[str | None] = []
    out = []
    for d in docs:
        if not enabled or d.error or d.finish_reason not in ("length", "stop") or not d.text.strip() or not is_unfinished(d.text):
            out.append(d)
            chars.append(0 if enabled and not d.error else None)
            texts.append(None)
            continue
        t = trim_to_sentence(d.text)
        if t is None or len(WORD_RE.findall(t.lower())) < min_words:
            out.append(d)
            chars.append(0)
            texts.append(None)
            continue
        out.append(Doc(d.id, t, d.prompt, d.slots, d.finish_reason, d.error, d.invalid_utf8))
        chars.append(len(d.text) - len(t))
        texts.append(t)
    return out, chars, texts


def replace_text(raw: pa.Table, new_text: list[str | None]) -> pa.Table:
    """`raw` with the trimmed documents' text replaced."""
    old = raw.column("text").to_pylist()
    col = pa.array([n if n is not None else o for o, n in zip(old, new_text)], pa.string())
    return raw.set_column(raw.column_names.index("text"), "text", col)
