"""LLM-judge evaluation of trained runs (composition root: trainers' sampling + generators' backends).

    completions = sample_run(run, beginnings)         # trainers.sample, fixed seeds
    answers     = judge backend(grading prompts)       # any configured backend, request-cached
    scores      = trainers.judge.grade(...)            # validated JSON, invalid answers asked again

Writes <run>/judge.parquet: one row per (judge, graded text) with the judge prompt, every raw
answer (for audit), the scores, and the reference texts' grades for the judge's sanity check.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

import prompts
from generators.base import Request, Sampling
from generators.cache import RequestCache
from generators.config import BackendConfig
from generators.registry import make_backend
from generators.templates import load_template, render_text
from trainers.judge import CRITERIA, JudgeAsk, grade
from trainers.sample import sample_run

JUDGE_TEMPLATE = prompts.ROOT / "eval" / "judge.toml"
BEGINNINGS = prompts.ROOT / "eval" / "beginnings.jsonl"
REFERENCES = prompts.ROOT / "eval" / "references.jsonl"


@dataclass
class EvalConfig:
    judges: list[BackendConfig] = field(default_factory=lambda: [BackendConfig(name="local", batch_size=16)])
    beginnings: str = str(BEGINNINGS)
    references: str = str(REFERENCES)  # good / shuffled / repeated texts for the judge's sanity check
    count: int = 8  # beginnings per run
    temperature: float = 0.8  # of the trained model's completions
    max_tokens: int = 80  # of the trained model's completions
    seed: int = 0
    judge_temperature: float = 0.3
    judge_max_tokens: int = 48
    max_attempts: int = 3


def judge_label(b: BackendConfig) -> str:
    return f"{b.name}:{b.model}"


def read_jsonl(path: str | Path) -> list[dict]:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: file not found")
    rows = []
    for n, line in enumerate(p.read_text().splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{p}:{n}: invalid JSON ({e.msg})") from None
    return rows


def split_reference(text: str) -> tuple[str, str]:
    """A reference story is graded as if its first sentence were the given beginning."""
    m = re.search(r"[.!?][\"']?\s", text)
    if not m:
        return "", text
    return text[: m.end()].strip(), text[m.end():].strip()


class JudgeClient:
    """One judge: a backend plus the grading template, answering through the request cache."""

    def __init__(self, cfg: BackendConfig, ecfg: EvalConfig, cache: RequestCache):
        self.cfg = cfg
        self.ecfg = ecfg
        self.cache = cache
        self.template = load_template(str(JUDGE_TEMPLATE))
        self._backend = None
        self.prompts: dict[str, str] = {}

    @property
    def backend(self):
        if self._backend is None:
            self._backend = make_backend(self.cfg.name, **self.cfg.options())
        return self._backend

    def request(self, a: JudgeAsk) -> Request:
        t = self.template
        ctx = {"beginning": a.beginning, "completion": a.completion}
        user = render_text(t.prompt, ctx)
        self.prompts[a.key] = user
        messages = ({"role": "system", "content": render_text(t.system, ctx)}, {"role": "user", "content": user})
        rid = hashlib.sha256(f"{a.key}\x1f{a.seed}".encode()).hexdigest()[:16]
        return Request(id=rid, messages=messages, prefill=render_text(t.prefill, ctx),
                       sampling=Sampling(temperature=self.ecfg.judge_temperature, top_p=0.95,
                                         max_tokens=self.ecfg.judge_max_tokens, seed=a.seed, stop=tuple(t.stop)),
                       json_schema=t.json_schema)

    def __call__(self, asks: Sequence[JudgeAsk]) -> list[tuple[str | None, str | None]]:
        reqs = [self.request(a) for a in asks]
        b = self.backend
        keys = [r.cache_key(b.name, b.model, getattr(b, "api", "chat")) for r in reqs]
        hits = self.cache.get_many(keys)
        todo = [(r, k) for r, k in zip(reqs, keys) if k not in hits]
        if todo:
            got = b.generate([r for r, _ in todo])
            self.cache.put_many((k, c) for (_, k), c in zip(todo, got))
            hits.update({k: c for (_, k), c in zip(todo, got)})
        out = []
        for r, k in zip(reqs, keys):
            c = hits[k]
            if not c.ok:
                out.append((None, f"{c.error_kind or 'error'}: {c.error}"))
                continue
            text = c.text
            if "{" not in text:  # a chat API that does not echo the prefill
                text = r.prefill + text
            out.append((text, None))
        return out

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()


def _seed(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:4], "big") & 0x7FFFFFFF


def evaluate_run(run: str | Path, ecfg: EvalConfig, judges: dict[str, JudgeClient] | None = None,
                 log=lambda s: None) -> Path:
    """Sample completions from a trained run, grade them with every judge, write judge.parquet."""
    run = Path(run)
    beginnings = read_jsonl(ecfg.beginnings)[: ecfg.count]
    if not beginnings:
        raise ValueError(f"{ecfg.beginnings}: no story beginnings")
    refs = read_jsonl(ecfg.references)
    log(f"{run}: sampling {len(beginnings)} completions (temperature {ecfg.temperature})")
    completions = sample_run(run, [b["text"] for b in beginnings], seed=ecfg.seed, temperature=ecfg.temperature,
                             max_tokens=ecfg.max_tokens)
    own = judges is None
    cache = RequestCache() if own else None
    judges = judges or {judge_label(j): JudgeClient(j, ecfg, cache) for j in ecfg.judges}
    rows: list[dict[str, Any]] = []
    try:
        for label, client in judges.items():
            asks = [JudgeAsk(f"completion:{b['id']}", b["text"], c, _seed(label, b["id"], ecfg.seed))
                    for b, c in zip(beginnings, completions)]
            asks += [JudgeAsk(f"reference:{r['id']}", *split_reference(r["text"]), _seed(label, r["id"])) for r in refs]
            kinds = {f"reference:{r['id']}": r["kind"] for r in refs}
            log(f"{run}: judge {label} grading {len(asks)} texts")
            for a, g in zip(asks, grade(asks, client, ecfg.max_attempts)):
                s = g.scores
                rows.append({
                    "judge": label, "key": a.key, "kind": kinds.get(a.key, "completion"),
                    "beginning": a.beginning, "completion": a.completion,
                    "judge_prompt": client.prompts.get(a.key, ""), "raw_answers": g.raw_answers,
                    "attempts": g.attempts, "valid": s is not None, "error": g.error,
                    **{c: (getattr(s, c) if s else None) for c in CRITERIA},
                    "overall": s.overall if s else None, "age_group": s.age_group if s else None,
                })
    finally:
        if own:
            for c in judges.values():
                c.close()
            cache.close()
    table = pa.Table.from_pylist(rows, schema=JUDGE_SCHEMA)
    out = run / "judge.parquet"
    tmp = out.with_name(".judge.parquet.tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(out)
    return out


JUDGE_SCHEMA = pa.schema([
    ("judge", pa.string()), ("key", pa.string()), ("kind", pa.string()), ("beginning", pa.string()),
    ("completion", pa.string()), ("judge_prompt", pa.string()), ("raw_answers", pa.list_(pa.string())),
    ("attempts", pa.int64()), ("valid", pa.bool_()), ("error", pa.string()),
    *[(c, pa.int64()) for c in CRITERIA], ("overall", pa.float64()), ("age_group", pa.string()),
])
