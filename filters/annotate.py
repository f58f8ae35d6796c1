"""The cleaning stage's task functions (raw -> annotated + clean); its driver is
`tinyschool.stages.annotate`, and the dedup shuffle between the two steps is `filters.dedup_shuffle`.

 1. `annotate_shard`, per raw shard: every annotator, the exact-dedup key, the MinHash signature
    and the decontamination match, written to the work folder `<corpus>/.annotate/<fingerprint>/`
    (one Parquet of metrics and one .npy of signatures per shard, atomically). A task holds one
    shard at a time, so memory does not grow with the corpus; texts never leave the task.
 2. the dedup shuffle over keys and signatures (`filters.dedup_shuffle`).
 3. `write_shard`, per shard: raw columns + metrics + dedup columns + `keep`/`drop_reason` ->
    `annotated/<shard>`, kept rows -> `clean/<shard>`; each shard registered as it is written.
Every task is idempotent (atomic writes, the same bytes when run twice). The fingerprint (raw
checksums, filter config, vocabulary and eval sets) names the work folder and is kept in the
stage's manifest info.
"""
from __future__ import annotations

import gc
import hashlib
import json
import os
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from corpora import Corpus
from corpora.card import reason_family
from corpora.store import sha256_file, shard_checksum, write_parquet_atomic
from filters import ngram_batch
from filters.base import Resources
from filters.config import FilterConfig
from filters.decontam import EvalIndex, EvalSetError
from filters.dedup_shuffle import dedup_columns
from filters.minhash import MinHasher
from filters.registry import build_annotators
from filters.select import COLUMNS as SELECT_COLUMNS
from filters.select import select_best
from filters.text import Doc, decode_text, normalized_text, parse_slots
from filters.trim import COLUMN as TRIM_COLUMN
from filters.trim import replace_text, trim_docs

STAGE_VERSION = 4  # 2: token hashes became a byte polynomial (so a batch hashes in numpy); 3: trim_unfinished also trims stories the model stopped mid-sentence; 4: the OOV measure allows the narrative words the decoder allows
WORK_DIR = ".annotate"


@dataclass
class AnnotateStats:
    docs: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)  # drop_reason family ("repetition:dup_line_frac") -> docs
    shards: int = 0
    shards_annotated: int = 0  # step 1 done this run (the rest were reused)
    shards_written: int = 0  # step 3 done this run
    bands: int = 0
    rows: int = 0
    fp: float = 0.0
    fn: float = 0.0
    exact_duplicates: int = 0
    near_duplicates: int = 0
    clusters: int = 0
    seconds: float = 0.0
    nothing_to_do: bool = False
    phase_seconds: dict[str, float] = field(default_factory=dict)
    histogram: str | None = None

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["dropped"] = dict(sorted(self.dropped.items()))
        return d


# ---- the worker side ------------------------------------------------------------------------------
_W: dict[str, Any] = {}


def worker_state(cfg_json: str, vocab_path: str | None) -> dict[str, Any]:
    if _W.get("key") != (cfg_json, vocab_path):
        cfg = FilterConfig.model_validate_json(cfg_json)
        _W.clear()
        _W.update(key=(cfg_json, vocab_path), cfg=cfg,
                  annotators=build_annotators(cfg, Resources(Path(vocab_path) if vocab_path else None)),
                  hasher=MinHasher(cfg.dedup.num_perm, cfg.dedup.seed),
                  eval=EvalIndex.load(cfg.decontam.eval_sets, cfg.decontam.ngram) if cfg.decontam.eval_sets else None)
    return _W


def _column(table: pa.Table, name: str) -> list:
    return table.column(name).to_pylist() if name in table.column_names else [None] * table.num_rows


def _read_texts(table: pa.Table) -> tuple[list[str], list[bool]]:
    """The decoded texts, and per text whether invalid UTF-8 was replaced."""
    raw_text = table.column("text").cast(pa.binary()).to_pylist()  # no UTF-8 validation: we decode ourselves
    decoded = [decode_text(raw) for raw in raw_text]
    return [t for t, _ in decoded], [bad for _, bad in decoded]


def _read_docs(table: pa.Table) -> tuple[list[Doc], list[str], bool]:
    texts, invalid = _read_texts(table)
    ids = [str(x) if x is not None else "" for x in table.column("id").to_pylist()]
    prompts, slots = _column(table, "prompt"), _column(table, "slots")
    finish, errors, kinds = _column(table, "finish_reason"), _column(table, "error"), _column(table, "error_kind")
    docs = []
    for i, text in enumerate(texts):
        err = (kinds[i] or "error") if errors[i] is not None else None
        docs.append(Doc(ids[i], text, prompts[i] or "", parse_slots(slots[i]), finish[i], err, invalid[i]))
    return docs, texts, any(invalid)


def annotate_table(table: pa.Table, state: dict[str, Any]) -> tuple[pa.Table, np.ndarray]:
    """Step 1 for one shard: a table of metrics (+ private columns `_reason`, `_key`, `_has_words`)
    and the (rows, num_perm) signature matrix."""
    cfg = state["cfg"]
    annotators = state["annotators"]
    eval_index = state["eval"]
    docs, _, _ = _read_docs(table)
    # trim_unfinished: stories cut by max_tokens are cut back to their last sentence (filters/trim.py)
    docs, trimmed, trimmed_text = trim_docs(cfg.degenerate.trim_unfinished, cfg.length.min_words, docs)
    cols: dict[str, list] = {"id": [d.id for d in docs]}
    types: dict[str, pa.DataType] = {"id": pa.string()}
    for a in annotators:
        for c, t in a.columns.items():
            cols[c], types[c] = [], t
    cols["decontam_match"], types["decontam_match"] = [], pa.string()
    reasons, keys, has_words = [], [], []
    # annotators that look across documents (math self-consistency groups samples of one prompt)
    # see the whole shard at once
    # (and the n-gram annotators, for speed: diversity reuses repetition's distinct-n counts in ngram_batch.shared)
    with ngram_batch.shared():
        batched = {id(a): a.annotate_batch(docs) for a in annotators if hasattr(a, "annotate_batch")}
    # MinHash shingles of every document, and the documents that share an n-gram with an eval set
    # (found exactly for the whole shard; only these are matched per document, to name the item)
    shingle_sets, candidate = ngram_batch.shingles_and_candidates(
        docs, cfg.dedup.shingle_size, eval_index.ngram if eval_index is not None else 0,
        eval_index.contains if eval_index is not None else None)
    # per annotator: its batched results (or None), its annotate, and (append, column) per column
    plan = [(batched.get(id(a)), a.annotate, [(cols[c].append, c) for c in a.columns]) for a in annotators]
    for i, d in enumerate(docs):
        reason = None
        for results, annotate, sinks in plan:
            values, r = results[i] if results is not None else annotate(d)
            for append, c in sinks:
                append(values.get(c))
            if reason is None:
                reason = r
        hit = eval_index.match_ngrams(d.ngrams(eval_index.ngram)) if candidate[i] else None
        cols["decontam_match"].append(f"{hit[0]}:{hit[1]}" if hit else None)
        if hit and not (reason or "").startswith(("generation_error", "degenerate:empty")):
            reason = eval_index.reason(hit)
        reasons.append(reason)
        has_words.append(bool(d.tokens))
        keys.append(hashlib.blake2b(normalized_text(d.tokens).encode(), digest_size=16).hexdigest() if d.tokens else None)
        d.release()
    sigs = state["hasher"].signatures_of_ngrams(shingle_sets)
    # best-of-k: one document per prompt is kept, the others marked not selected (filters/select.py)
    reasons, picked = select_best(cfg.select, cols["id"], [d.prompt for d in docs], cols, reasons)
    extra = {c: pa.array(v, SELECT_COLUMNS[c]) for c, v in picked.items()}
    if cfg.degenerate.trim_unfinished:
        extra[TRIM_COLUMN] = pa.array(trimmed, pa.int64())
        extra["_text"] = pa.array(trimmed_text, pa.string())
    out = pa.table({**{c: pa.array(v, type=types[c]) for c, v in cols.items()}, **extra,
                    "_reason": pa.array(reasons, pa.string()), "_key": pa.array(keys, pa.string()),
                    "_has_words": pa.array(has_words, pa.bool_())})
    return out, sigs


@contextmanager
def _few_collections(threshold: int = 50_000):
    """Python's cyclic garbage collector runs every 700 new containers by default; a shard makes
    millions (values dicts, token lists) that live until the shard is written, none of them in a
    cycle, so the collections find nothing (about 3% of a shard's time, measured). Fewer of them
    while a shard is annotated; the settings are restored after."""
    old = gc.get_threshold()
    gc.set_threshold(threshold, *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


def annotate_shard(spec: tuple[str, str, str, str | None], name: str) -> int:
    """Step 1 for one raw shard (`spec`: corpus root, work folder, filter config JSON, vocabulary):
    its metrics and signatures into the work folder. Returns the shard's rows."""
    root, work, cfg_json, vocab_path = spec
    table = Corpus(root).read_shard("raw", name)
    with _few_collections():
        metrics, sigs = annotate_table(table, worker_state(cfg_json, vocab_path))
    wd = Path(work)
    tmp = wd / f".{name}.npy.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        np.save(f, sigs)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, wd / f"{name}.npy")
    write_parquet_atomic(metrics, wd / f"{name}.parquet")  # its presence marks the shard done
    return table.num_rows


def annotated_done(work: Path, name: str) -> bool:
    return (work / f"{name}.parquet").exists() and (work / f"{name}.npy").exists()


def write_shard(spec: tuple[str, str], task: tuple[str, list[int], list]) -> tuple[str, int, int]:
    """Step 3 for one shard (`spec`: corpus root, work folder; `task`: the shard, its clustered rows
    and their (cluster_id, duplicate_of, dedup_reason)): `annotated` and `clean`, registered."""
    root, work = spec
    name, rows, values = task
    corpus = Corpus(root)
    raw = corpus.read_shard("raw", name)
    metrics = pq.read_table(Path(work) / f"{name}.parquet")
    dedup_cols = dedup_columns(metrics.column("id").to_pylist(), rows, values)
    texts, invalid = _read_texts(raw)  # only the texts: no Doc (tokens, hashes) is needed here
    if any(invalid):  # invalid UTF-8 becomes U+FFFD in annotated (raw keeps the bytes)
        raw = raw.set_column(raw.column_names.index("text"), "text", pa.array(texts, pa.string()))
    if "_text" in metrics.column_names:  # trimmed stories (filters/trim.py); raw keeps the original
        raw = replace_text(raw, metrics.column("_text").to_pylist())
    reasons = metrics.column("_reason").to_pylist()
    final = [r or d for r, d in zip(reasons, dedup_cols["dedup_reason"])]
    keep = [r is None for r in final]
    annotated = raw
    for c in metrics.column_names:
        if c != "id" and not c.startswith("_"):
            annotated = annotated.append_column(c, metrics.column(c))
    annotated = (annotated.append_column("cluster_id", pa.array(dedup_cols["cluster_id"], pa.string()))
                 .append_column("duplicate_of", pa.array(dedup_cols["duplicate_of"], pa.string()))
                 .append_column("keep", pa.array(keep, pa.bool_()))
                 .append_column("drop_reason", pa.array(final, pa.string())))
    corpus.write_shard("annotated", name, annotated)
    clean = annotated.filter(pa.array(keep, pa.bool_()))
    corpus.write_shard("clean", name, clean)
    return name, annotated.num_rows, clean.num_rows


# ---- what the driver reads -----------------------------------------------------------------------
def fingerprint(corpus: Corpus, cfg, vocab_path: str | Path | None) -> tuple[str, dict[str, Any]]:
    raw = {n: shard_checksum(e) for n, e in corpus.shard_entries("raw").items()}
    evals = []
    for es in cfg.decontam.eval_sets:
        p = Path(es.path)
        if not p.is_file():
            raise EvalSetError(f"{p}: eval set {es.name!r} not found (filters.decontam.eval_sets)")
        evals.append([es.name, sha256_file(p)])
    info = {"version": STAGE_VERSION, "raw": raw, "filters": cfg.model_dump(mode="json"),
            "vocab": sha256_file(Path(vocab_path)) if vocab_path else None, "eval_sets": evals}
    fp = hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()
    return fp, info


def count_outcomes(corpus: Corpus, stats: AnnotateStats) -> None:
    """kept, dropped by reason family and duplicates, counted from `annotated`."""
    stats.kept, stats.dropped = 0, Counter()
    stats.exact_duplicates = stats.near_duplicates = 0
    for _, t in corpus.iter_stage("annotated", columns=["drop_reason"]):
        for r in t.column("drop_reason").to_pylist():
            if r is None:
                stats.kept += 1
                continue
            family = reason_family(r)
            stats.dropped[family] += 1
            stats.exact_duplicates += family == "exact_duplicate"
            stats.near_duplicates += family == "near_duplicate"


def fill_from_info(stats: AnnotateStats, info: dict[str, Any]) -> None:
    for k in ("kept", "exact_duplicates", "near_duplicates", "clusters"):
        setattr(stats, k, info.get(k, 0))
    stats.dropped = Counter(info.get("dropped", {}))
