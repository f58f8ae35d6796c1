"""Minimal-pair suites (a registry): each loader turns files on disk into a `Suite` of
(good, bad) sentence pairs with their grouping fields.

- `blimp`  a BLiMP folder: `<paradigm>.jsonl` files (`sentence_good`, `sentence_bad`, `UID`,
           `linguistics_term`, `field`, `pairID`) and the paper's `models_summary.jsonl`
- `pairs`  any JSONL of `{"good": ..., "bad": ...}` (or `sentence_good` / `sentence_bad`) with
           optional `paradigm` (or `UID`), `linguistics_term` (or `term`), `field` and `id`

Nothing is downloaded: the user passes the folder or file they have.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence


class ProbeError(Exception):
    """One line naming what and where."""


# the paper's columns in models_summary.jsonl, as they are named in our tables
PUBLISHED = {"ngram": "paper 5-gram", "lstm": "paper LSTM", "txl": "paper TXL", "gpt2": "paper GPT-2"}
BLIMP_EXTRA_FILES = {"models_summary.jsonl"}


@dataclass
class Suite:
    name: str
    source: str
    good: list[str] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)
    pair_id: list[str] = field(default_factory=list)
    paradigm: list[str] = field(default_factory=list)
    term: list[str] = field(default_factory=list)
    field_: list[str] = field(default_factory=list)
    published: dict[str, dict[str, float]] = field(default_factory=dict)  # model -> paradigm -> percent

    def __len__(self) -> int:
        return len(self.good)

    def add(self, good: str, bad: str, pair_id: str, paradigm: str, term: str, fld: str) -> None:
        self.good.append(good)
        self.bad.append(bad)
        self.pair_id.append(pair_id)
        self.paradigm.append(paradigm)
        self.term.append(term)
        self.field_.append(fld)

    def paradigms(self) -> list[str]:
        return list(dict.fromkeys(self.paradigm))


def _read_jsonl(path: Path) -> list[tuple[int, dict]]:
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:
                raise ProbeError(f"{path}:{n}: invalid JSON ({e.msg})") from None
            if not isinstance(d, dict):
                raise ProbeError(f"{path}:{n}: expected a JSON object")
            out.append((n, d))
    return out


def _pick(d: dict, *names: str) -> object:
    for n in names:
        if n in d:
            return d[n]
    return None


def _select(available: Sequence[str], wanted: Sequence[str] | None, where: str) -> list[str]:
    if not wanted:
        return list(available)
    missing = [p for p in wanted if p not in available]
    if missing:
        shown = ", ".join(list(available)[:5]) + (", ..." if len(available) > 5 else "")
        raise ProbeError(f"{where}: no paradigm {missing[0]!r} (there are {len(available)}: {shown})")
    return list(wanted)


def load_blimp(data: str | Path, paradigms: Sequence[str] | None = None) -> Suite:
    root = Path(data)
    if not root.is_dir():
        raise ProbeError(f"{root}: BLiMP folder not found (pass the folder with <paradigm>.jsonl files)")
    files = {p.stem: p for p in sorted(root.glob("*.jsonl")) if p.name not in BLIMP_EXTRA_FILES}
    if not files:
        raise ProbeError(f"{root}: no <paradigm>.jsonl files in this folder")
    suite = Suite("blimp", str(root))
    selected = _select(sorted(files), paradigms, str(root))
    for name in selected:
        for n, d in _read_jsonl(files[name]):
            good, bad = d.get("sentence_good"), d.get("sentence_bad")
            if not isinstance(good, str) or not isinstance(bad, str):
                raise ProbeError(f"{files[name]}:{n}: needs string fields sentence_good and sentence_bad")
            suite.add(good, bad, str(d.get("pairID", n - 1)), str(d.get("UID", name)),
                      str(d.get("linguistics_term", "")), str(d.get("field", "")))
    summary = root / "models_summary.jsonl"
    if summary.exists():
        for _, d in _read_jsonl(summary):
            for key, label in PUBLISHED.items():
                if d.get("UID") in selected and isinstance(d.get(key), (int, float)):
                    suite.published.setdefault(label, {})[d["UID"]] = round(100.0 * float(d[key]), 6)
    return suite


def load_pairs(data: str | Path, paradigms: Sequence[str] | None = None) -> Suite:
    path = Path(data)
    if not path.is_file():
        raise ProbeError(f"{path}: pairs file not found (a JSONL of {{\"good\": ..., \"bad\": ...}})")
    suite = Suite("pairs", str(path))
    rows = _read_jsonl(path)
    for n, d in rows:
        good, bad = _pick(d, "good", "sentence_good"), _pick(d, "bad", "sentence_bad")
        if not isinstance(good, str) or not isinstance(bad, str) or not good.strip() or not bad.strip():
            raise ProbeError(f"{path}:{n}: needs non-empty string fields good and bad")
        suite.add(good, bad, str(_pick(d, "id", "pairID", "pair_id") or n), str(_pick(d, "paradigm", "UID") or "all"),
                  str(_pick(d, "linguistics_term", "term") or ""), str(d.get("field") or ""))
    if not suite.good:
        raise ProbeError(f"{path}: no pairs in this file")
    if paradigms:
        keep = set(_select(suite.paradigms(), paradigms, str(path)))
        sel = [i for i, p in enumerate(suite.paradigm) if p in keep]
        out = Suite("pairs", str(path))
        for i in sel:
            out.add(suite.good[i], suite.bad[i], suite.pair_id[i], suite.paradigm[i], suite.term[i], suite.field_[i])
        suite = out
    return suite


SUITES: dict[str, Callable[..., Suite]] = {"blimp": load_blimp, "pairs": load_pairs}


def load_suite(name: str, data: str | Path, paradigms: Sequence[str] | None = None) -> Suite:
    if name not in SUITES:
        raise ProbeError(f"unknown suite {name!r} (one of {', '.join(SUITES)})")
    return SUITES[name](data, paradigms)
