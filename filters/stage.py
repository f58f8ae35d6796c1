"""The cleaning stage: raw -> annotated (every document, its metrics, `keep`, `drop_reason`) -> clean.

Three steps, each resumable:
 1. per raw shard, in a process pool: every annotator, the exact-dedup key, the MinHash signature
    and the decontamination match; written to `<corpus>/.annotate/<fingerprint>/` (one Parquet of
    metrics and one .npy of signatures per shard, atomically). A worker holds one shard at a time,
    so memory does not grow with the corpus; texts are never sent back to the main process.
 2. in the main process: exact + near dedup over all shards (keys and signatures only: ~0.5 KB a
    document at 128 permutations).
 3. per shard, in the pool: raw columns + metrics + dedup columns + `keep`/`drop_reason` ->
    `annotated/<shard>`, kept rows -> `clean/<shard>`; each shard registered as it is written.
A SIGKILL loses at most the shards in flight. The fingerprint (raw checksums, filter config,
vocabulary and eval sets) is kept in the stage's manifest info: the same fingerprint with both
stages complete means nothing to do; a different one starts over.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpora import Corpus
from corpora.store import CorpusError, sha256_file, shard_checksum, write_parquet_atomic
from filters.base import Resources
from filters.dedup import deduplicate, optimal_bands
from filters.minhash import MinHasher, shingle_hashes
from filters.select import COLUMNS as SELECT_COLUMNS
from filters.select import select_best
from filters.trim import COLUMN as TRIM_COLUMN
from filters.trim import replace_text, trim_docs
from filters.text import Doc, decode_text, normalized_text, parse_slots

STAGE_VERSION = 2  # 2: token hashes became a byte polynomial (so a batch hashes in numpy)
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


def _worker_state(cfg_json: str, vocab_path: str | None) -> dict[str, Any]:
    if _W.get("key") != (cfg_json, vocab_path):
        from filters.config import FilterConfig
        from filters.decontam import EvalIndex
        from filters.registry import build_annotators

        cfg = FilterConfig.model_validate_json(cfg_json)
        _W.clear()
        _W.update(key=(cfg_json, vocab_path), cfg=cfg,
                  annotators=build_annotators(cfg, Resources(Path(vocab_path) if vocab_path else None)),
                  hasher=MinHasher(cfg.dedup.num_perm, cfg.dedup.seed),
                  eval=EvalIndex.load(cfg.decontam.eval_sets, cfg.decontam.ngram) if cfg.decontam.eval_sets else None)
    return _W


def _column(table: pa.Table, name: str) -> list:
    return table.column(name).to_pylist() if name in table.column_names else [None] * table.num_rows


def _read_docs(table: pa.Table) -> tuple[list[Doc], list[str], bool]:
    raw_text = table.column("text").cast(pa.binary()).to_pylist()  # no UTF-8 validation: we decode ourselves
    ids = [str(x) if x is not None else "" for x in table.column("id").to_pylist()]
    prompts, slots = _column(table, "prompt"), _column(table, "slots")
    finish, errors, kinds = _column(table, "finish_reason"), _column(table, "error"), _column(table, "error_kind")
    docs, texts, repaired = [], [], False
    for i, raw in enumerate(raw_text):
        text, bad = decode_text(raw)
        repaired |= bad
        texts.append(text)
        err = (kinds[i] or "error") if errors[i] is not None else None
        docs.append(Doc(ids[i], text, prompts[i] or "", parse_slots(slots[i]), finish[i], err, bad))
    return docs, texts, repaired


def annotate_table(table: pa.Table, state: dict[str, Any]) -> tuple[pa.Table, np.ndarray]:
    """Step 1 for one shard: a table of metrics (+ private columns `_reason`, `_key`, `_has_words`)
    and the (rows, num_perm) signature matrix."""
    cfg = state["cfg"]
    annotators = state["annotators"]
    eval_index = state["eval"]
    docs, _, _ = _read_docs(table)
    # [#15 hook] trim_unfinished: stories cut by max_tokens are cut back to their last sentence (filters/trim.py)
    docs, trimmed, trimmed_text = trim_docs(cfg.degenerate.trim_unfinished, cfg.length.min_words, docs)
    cols: dict[str, list] = {"id": [d.id for d in docs]}
    types: dict[str, pa.DataType] = {"id": pa.string()}
    for a in annotators:
        for c, t in a.columns.items():
            cols[c], types[c] = [], t
    cols["decontam_match"], types["decontam_match"] = [], pa.string()
    reasons, keys, has_words, shingle_sets = [], [], [], []
    # annotators that look across documents (math self-consistency groups samples of one prompt)
    # see the whole shard at once
    batched = {id(a): a.annotate_batch(docs) for a in annotators if hasattr(a, "annotate_batch")}
    for i, d in enumerate(docs):
        reason = None
        for a in annotators:
            values, r = batched[id(a)][i] if id(a) in batched else a.annotate(d)
            for c in a.columns:
                cols[c].append(values.get(c))
            if reason is None:
                reason = r
        hit = eval_index.match_ngrams(d.ngrams(eval_index.ngram)) if eval_index is not None else None
        cols["decontam_match"].append(f"{hit[0]}:{hit[1]}" if hit else None)
        if hit and not (reason or "").startswith(("generation_error", "degenerate:empty")):
            reason = eval_index.reason(hit)
        reasons.append(reason)
        has_words.append(bool(d.tokens))
        keys.append(hashlib.blake2b(normalized_text(d.tokens).encode(), digest_size=16).hexdigest() if d.tokens else None)
        shingle_sets.append(shingle_hashes(d, cfg.dedup.shingle_size))
        d.release()
    sigs = state["hasher"].signatures(shingle_sets)
    # [#15 hook] best-of-k: one document per prompt is kept, the others marked not selected (filters/select.py)
    reasons, picked = select_best(cfg.select, cols["id"], [d.prompt for d in docs], cols, reasons)
    extra = {c: pa.array(v, SELECT_COLUMNS[c]) for c, v in picked.items()}
    if cfg.degenerate.trim_unfinished:
        extra[TRIM_COLUMN] = pa.array(trimmed, pa.int64())
        extra["_text"] = pa.array(trimmed_text, pa.string())
    out = pa.table({**{c: pa.array(v, type=types[c]) for c, v in cols.items()}, **extra,
                    "_reason": pa.array(reasons, pa.string()), "_key": pa.array(keys, pa.string()),
                    "_has_words": pa.array(has_words, pa.bool_())})
    return out, sigs


def _step1(root: str, work: str, name: str, cfg_json: str, vocab_path: str | None) -> tuple[str, int]:
    state = _worker_state(cfg_json, vocab_path)
    corpus = Corpus(root)
    table = corpus.read_shard("raw", name)
    metrics, sigs = annotate_table(table, state)
    wd = Path(work)
    tmp = wd / f".{name}.npy.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        np.save(f, sigs)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, wd / f"{name}.npy")
    write_parquet_atomic(metrics, wd / f"{name}.parquet")  # its presence marks the shard done
    return name, table.num_rows


def _step3(root: str, work: str, name: str, dedup_cols: dict[str, list]) -> tuple[str, int, int]:
    corpus = Corpus(root)
    raw = corpus.read_shard("raw", name)
    metrics = pq.read_table(Path(work) / f"{name}.parquet")
    _, texts, repaired = _read_docs(raw)
    if repaired:  # invalid UTF-8 becomes U+FFFD in annotated (raw keeps the bytes)
        raw = raw.set_column(raw.column_names.index("text"), "text", pa.array(texts, pa.string()))
    if "_text" in metrics.column_names:  # [#15 hook] trimmed stories (filters/trim.py); raw keeps the original
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


# ---- the main side --------------------------------------------------------------------------------
def fingerprint(corpus: Corpus, cfg, vocab_path: str | Path | None) -> tuple[str, dict[str, Any]]:
    raw = {n: shard_checksum(e) for n, e in corpus.shard_entries("raw").items()}
    from filters.decontam import EvalSetError

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


class _Pool:
    """A process pool, or the calling process when workers <= 1."""

    def __init__(self, workers: int):
        self.ex = ProcessPoolExecutor(workers, mp_context=get_context("fork")) if workers > 1 else None

    def map(self, fn, calls):
        if self.ex is None:
            for c in calls:
                yield fn(*c)
            return
        futs = [self.ex.submit(fn, *c) for c in calls]
        try:
            for f in futs:  # in submission order: deterministic, and progress still moves
                yield f.result()
        except BaseException:
            for f in futs:
                f.cancel()
            raise

    def close(self):
        if self.ex is not None:
            self.ex.shutdown(wait=True, cancel_futures=True)


def _task(progress, name: str, total: int):
    return progress.add_task(name, total=total) if progress is not None else None


def _advance(progress, task, n: int) -> None:
    if progress is not None:
        progress.advance(task, n)


def run_annotate(corpus: Corpus, cfg, vocab_path: str | Path | None, progress: Any = None, workers: int = 2,
                 report_dir: str | Path | None = None) -> AnnotateStats:
    """Annotate every raw document, dedup, decontaminate; write `annotated` and `clean`.
    `progress` is a rich Progress (or None). Returns the stage's statistics."""
    t0 = time.time()
    stats = AnnotateStats()
    entries = corpus.shard_entries("raw")
    if not entries:
        raise CorpusError(f"{corpus.root}: no raw shards to annotate (run `tinyschool generate` first)")
    fp, info = fingerprint(corpus, cfg, vocab_path)
    stats.shards = len(entries)
    stats.docs = sum(e["rows"] for e in entries.values())
    b, r, fpp, fnp = optimal_bands(cfg.dedup.threshold, cfg.dedup.num_perm, cfg.dedup.false_positive_weight)
    stats.bands, stats.rows, stats.fp, stats.fn = b, r, fpp, fnp
    m = corpus.manifest()["stages"]
    prev = m.get("annotated", {}).get("info", {}).get("fingerprint")
    if prev == fp and corpus.is_complete("annotated") and corpus.is_complete("clean"):
        stats.nothing_to_do = True
        _fill_from_info(stats, m["annotated"]["info"])
        stats.seconds = time.time() - t0
        return stats
    if prev != fp:  # different inputs or thresholds: start over
        corpus.clear_stage("annotated")
        corpus.clear_stage("clean")

        def start(man):
            man["stages"]["annotated"]["info"] = {"fingerprint": fp, "in_progress": True}
        corpus.update_manifest(start)
    work_root = corpus.root / WORK_DIR
    work = work_root / fp[:16]
    work.mkdir(parents=True, exist_ok=True)
    for old in work_root.iterdir():
        if old != work and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    cfg_json = cfg.model_dump_json()
    vp = str(vocab_path) if vocab_path else None
    names = list(entries)
    # load spaCy, textstat, the vocabulary and the eval index once, here: forked workers inherit them
    _worker_state(cfg_json, vp)
    clock = time.time()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.time()
        stats.phase_seconds[name] = round(now - clock, 2)
        clock = now
    lap("load")
    pool = _Pool(min(workers, len(names)))
    try:
        # step 1
        todo = [n for n in names if not (work / f"{n}.parquet").exists() or not (work / f"{n}.npy").exists()]
        task = _task(progress, "annotate", stats.docs)
        _advance(progress, task, sum(entries[n]["rows"] for n in names if n not in todo))
        for name, rows in pool.map(_step1, [(str(corpus.root), str(work), n, cfg_json, vp) for n in todo]):
            stats.shards_annotated += 1
            _advance(progress, task, rows)
        lap("annotate")
        # step 2
        task = _task(progress, "dedup", stats.docs)
        ids, keys, has_words, passed, sigs, per_shard = [], [], [], [], [], []
        for n in names:
            t = pq.read_table(work / f"{n}.parquet", columns=["id", "_reason", "_key", "_has_words"])
            per_shard.append(t.num_rows)
            ids += t.column("id").to_pylist()
            keys += t.column("_key").to_pylist()
            has_words += t.column("_has_words").to_pylist()
            passed += pc.is_null(t.column("_reason")).to_pylist()
            sigs.append(np.load(work / f"{n}.npy"))
        signatures = np.concatenate(sigs) if sigs else np.empty((0, cfg.dedup.num_perm), np.uint32)
        del sigs
        d = cfg.dedup
        res = deduplicate(keys, signatures, np.array(has_words, bool), np.array(passed, bool), exact=d.exact, near=d.near,
                          threshold=d.threshold, verify_jaccard=d.verify_jaccard, fp_weight=d.false_positive_weight,
                          seed=d.seed, bands=(b, r))
        del signatures
        _advance(progress, task, stats.docs)
        cluster_id, duplicate_of, dedup_reason = [], [], []
        for i in range(len(ids)):
            rep = res.representative[i]
            cluster_id.append(ids[rep] if rep >= 0 else ids[i])
            dup = rep >= 0 and rep != i
            duplicate_of.append(ids[rep] if dup else None)
            dedup_reason.append(None if not dup else (f"exact_duplicate:{ids[rep]}" if res.exact_dup[i] and keys[i] == keys[rep] else f"near_duplicate:{ids[rep]}"))
        stats.clusters = int(len({c for c in res.cluster if c >= 0}))
        lap("dedup")
        # step 3
        done = set(corpus.shard_entries("annotated")) & set(corpus.shard_entries("clean"))
        task = _task(progress, "write", len(names))
        _advance(progress, task, len(done))
        calls, start = [], 0
        for n, rows in zip(names, per_shard):
            sl = slice(start, start + rows)
            start += rows
            if n in done:
                continue
            calls.append((str(corpus.root), str(work), n, {"cluster_id": cluster_id[sl], "duplicate_of": duplicate_of[sl],
                                                           "dedup_reason": dedup_reason[sl]}))
        for _ in pool.map(_step3, calls):
            stats.shards_written += 1
            _advance(progress, task, 1)
        lap("write")
    finally:
        pool.close()
    return finish_annotate(corpus, stats, fp, info["raw"], (b, r), report_dir, work, work_root, t0, lap)


def finish_annotate(corpus: Corpus, stats: AnnotateStats, fp: str, raw_info: Any, bands: tuple[int, int],
                    report_dir: Any, work: Any, work_root: Path, t0: float, lap: Any) -> AnnotateStats:
    """The stage's last step, whatever executed it: count, mark complete, report, clean up."""
    _collect(corpus, stats)
    info_out = {"fingerprint": fp, "raw": raw_info, "bands": bands[0], "rows": bands[1], "docs": stats.docs,
                "kept": stats.kept, "dropped": dict(sorted(stats.dropped.items())),
                "exact_duplicates": stats.exact_duplicates, "near_duplicates": stats.near_duplicates,
                "clusters": stats.clusters}
    corpus.mark_complete("annotated", info_out)
    corpus.mark_complete("clean", {"fingerprint": fp})
    from filters.report import histogram_png

    stats.histogram = str(histogram_png(corpus, Path(report_dir) if report_dir else corpus.root / "reports"))
    lap("report")
    shutil.rmtree(work, ignore_errors=True)
    with contextlib.suppress(OSError):
        work_root.rmdir()
    stats.seconds = time.time() - t0
    return stats


def _collect(corpus: Corpus, stats: AnnotateStats) -> None:
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


def _fill_from_info(stats: AnnotateStats, info: dict[str, Any]) -> None:
    for k in ("kept", "exact_duplicates", "near_duplicates", "clusters"):
        setattr(stats, k, info.get(k, 0))
    stats.dropped = Counter(info.get("dropped", {}))


def reason_family(reason: str) -> str:
    """The reason without its per-document detail: "decontam:gsm8k:17" -> "decontam:gsm8k",
    "near_duplicate:<id>" -> "near_duplicate"."""
    if reason.startswith(("near_duplicate:", "exact_duplicate:")):
        return reason.split(":", 1)[0]
    if reason.startswith("decontam:"):
        return ":".join(reason.split(":")[:2])
    return reason
