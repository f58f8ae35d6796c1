"""The cleaning stage: raw -> annotated (every document, its metrics, `keep`, `drop_reason`) -> clean.

The driver (`run_annotate`) decides once, from the store, what is done: the same fingerprint with
`annotated` and `clean` complete means nothing to do; a different one starts over; otherwise the
work folder `<corpus>/.annotate/<fingerprint>/` says which shards are annotated, which shuffle files
exist, and the manifest which shards are written. Then it maps the task functions of
`filters.annotate` and `filters.dedup_shuffle` over what is left, on any executor:
 1. annotate: one task per raw shard (metrics + MinHash signatures into the work folder);
 2. dedup: exact keys per shard -> one task per partition -> exact duplicates; band hashes per
    shard -> one task per partition -> verified near-duplicate pairs; connected components over the
    edge list (here: one edge per duplicate); ids and filter outcomes of clustered rows per shard;
 3. write: one task per shard (`annotated` + `clean`, registered as written).
A SIGKILL or a dead worker loses at most the tasks in flight; memory per process is one shard or
one partition, whatever the corpus size.
"""
from __future__ import annotations

import contextlib
import shutil
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

import prompts
from corpora import Corpus
from corpora.errors import UserError
from corpora.store import CorpusError
from filters import annotate as fa
from filters import dedup_shuffle as ds
from filters.config import DedupConfig, FilterConfig
from filters.dedup import components, optimal_bands
from filters.report import histogram_png, reason_rows
from tinyschool.executors import make_executor
from tinyschool.stages.driver import Phases
from tinyschool.ui import console, print_table, progress_bar


def run_annotate(corpus: Corpus, cfg: FilterConfig, vocab_path: str | Path | None, executor=None, progress: Any = None,
                 report_dir: str | Path | None = None) -> fa.AnnotateStats:
    """Annotate every raw document, dedup, decontaminate; write `annotated` and `clean` with
    `executor` (default: local, 2 processes). `progress` is a rich Progress (or None)."""
    executor = executor or make_executor()
    t0 = time.time()
    stats = fa.AnnotateStats()
    entries = corpus.shard_entries("raw")
    if not entries:
        raise CorpusError(f"{corpus.root}: no raw shards to annotate (run `tinyschool generate` first)")
    fp, info = fa.fingerprint(corpus, cfg, vocab_path)
    stats.shards = len(entries)
    stats.docs = sum(e["rows"] for e in entries.values())
    b, r, fpp, fnp = optimal_bands(cfg.dedup.threshold, cfg.dedup.num_perm, cfg.dedup.false_positive_weight)
    stats.bands, stats.rows, stats.fp, stats.fn = b, r, fpp, fnp
    m = corpus.manifest()["stages"]
    prev = m.get("annotated", {}).get("info", {}).get("fingerprint")
    if prev == fp and corpus.is_complete("annotated") and corpus.is_complete("clean"):
        stats.nothing_to_do = True
        fa.fill_from_info(stats, m["annotated"]["info"])
        stats.seconds = time.time() - t0
        return stats
    if prev != fp:  # different inputs or thresholds: start over
        corpus.clear_stage("annotated")
        corpus.clear_stage("clean")

        def start(man):
            man["stages"]["annotated"]["info"] = {"fingerprint": fp, "in_progress": True}
        corpus.update_manifest(start)
    work_root = corpus.root / fa.WORK_DIR
    work = work_root / fp[:16]
    work.mkdir(parents=True, exist_ok=True)
    for old in work_root.iterdir():
        if old != work and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    cfg_json = cfg.model_dump_json()
    vp = str(vocab_path) if vocab_path else None
    names = list(entries)
    rows = [entries[n]["rows"] for n in names]
    root = str(corpus.root)
    ph = Phases(progress)
    with executor.session():
        ph.lap("load")
        # 1. metrics and signatures, one task per shard not yet in the work folder
        todo = [n for n in names if not fa.annotated_done(work, n)]
        for _ in ph.run(executor, "annotate", partial(fa.annotate_shard, (root, str(work), cfg_json, vp)), todo,
                        total=stats.docs, done=stats.docs - sum(entries[n]["rows"] for n in todo), size=lambda n: n,
                        setup=partial(fa.worker_state, cfg_json, vp)):
            stats.shards_annotated += 1
        ph.lap("annotate")
        # 2. the dedup shuffle
        columns, stats.clusters = dedup(executor, str(work), names, rows, cfg.dedup, (b, r), ph)
        ph.lap("dedup")
        # 3. annotated + clean, one task per shard not yet written
        done = set(corpus.shard_entries("annotated")) & set(corpus.shard_entries("clean"))
        tasks = [(n, *columns.get(n, ([], []))) for n in names if n not in done]
        for _ in ph.run(executor, "write", partial(fa.write_shard, (root, str(work))), tasks, total=len(names), done=len(done)):
            stats.shards_written += 1
        ph.lap("write")
    fa.count_outcomes(corpus, stats)
    corpus.mark_complete("annotated", {
        "fingerprint": fp, "raw": info["raw"], "bands": b, "rows": r, "docs": stats.docs, "kept": stats.kept,
        "dropped": dict(sorted(stats.dropped.items())), "exact_duplicates": stats.exact_duplicates,
        "near_duplicates": stats.near_duplicates, "clusters": stats.clusters})
    corpus.mark_complete("clean", {"fingerprint": fp})
    stats.histogram = str(histogram_png(corpus, Path(report_dir) if report_dir else corpus.root / "reports"))
    ph.lap("report")
    shutil.rmtree(work, ignore_errors=True)
    with contextlib.suppress(OSError):
        work_root.rmdir()
    stats.phase_seconds = ph.seconds
    stats.seconds = time.time() - t0
    return stats


def dedup(executor, work: str, names: list[str], rows: list[int], d: DedupConfig, bands: tuple[int, int],
          phases: Phases | None = None) -> tuple[dict[str, tuple[list[int], list]], int]:
    """Exact + MinHash dedup of the work folder's shards as a shuffle (`filters.dedup_shuffle`).
    Returns, per shard with clustered rows, (rows, [(cluster_id, duplicate_of, dedup_reason)]), and
    the cluster count. Steps whose files exist are not run again. This process holds only the edge
    list (one edge per duplicate) and the ids of clustered documents."""
    ph = phases or Phases()
    offsets = np.r_[0, np.cumsum(rows)].astype(np.int64)
    sh = ds.Shuffle(work, tuple(names), tuple(int(x) for x in offsets), executor.partitions(int(offsets[-1])),
                    bands[0], bands[1], d.verify_jaccard)
    P, S = sh.partitions, range(len(names))
    empty = np.empty((0, 2), np.int64)
    exact_e = empty
    if d.exact:
        todo = [s for s in S if not sh.shard_done(names[s], "exact")]
        list(ph.run(executor, "dedup: exact keys", partial(ds.exact_shard, sh), todo, total=len(names), done=len(names) - len(todo)))
        todo = [p for p in range(P) if not sh.bucket_path("exact", p).exists()]
        list(ph.run(executor, "dedup: exact buckets", partial(ds.exact_bucket, sh), todo, total=P, done=P - len(todo)))
        exact_e = ds.edges(sh, "exact")
    exact_dup = np.unique(exact_e[:, 1])
    near_e = empty
    if d.near:
        cut = np.searchsorted(exact_dup, offsets)
        todo = [(s, exact_dup[cut[s]:cut[s + 1]] - offsets[s]) for s in S if not sh.shard_done(names[s], "bands")]
        list(ph.run(executor, "dedup: band hashes", partial(ds.band_shard, sh), todo, total=len(names), done=len(names) - len(todo)))
        todo = [p for p in range(P) if not sh.bucket_path("near", p).exists()]
        list(ph.run(executor, "dedup: band buckets", partial(ds.band_bucket, sh), todo, total=P, done=P - len(todo)))
        near_e = ds.edges(sh, "near")
    nodes, roots = components(np.concatenate([exact_e, near_e]))
    # ids, keys and filter outcomes of the clustered documents only, read where they live
    shard_of = np.searchsorted(offsets, nodes, side="right") - 1
    sels = {int(s): np.flatnonzero(shard_of == s) for s in np.unique(shard_of)}
    ids: list = [None] * len(nodes)
    keys: list = [None] * len(nodes)
    passed = np.zeros(len(nodes), bool)
    for s, i_, k_, p_ in executor.map(partial(ds.lookup, sh), [(s, nodes[sel] - offsets[s]) for s, sel in sels.items()]):
        sel = sels[s]
        for j, q in enumerate(sel.tolist()):
            ids[q], keys[q] = i_[j], k_[j]
        passed[sel] = p_
    values = ds.resolve(nodes, roots, np.isin(nodes, exact_dup), ids, keys, passed)
    columns = {names[s]: ((nodes[sel] - offsets[s]).tolist(), [values[q] for q in sel.tolist()]) for s, sel in sels.items()}
    return columns, int(len(np.unique(roots)))


def annotate_stage(recipe, corpus: Corpus, args: Any = None) -> fa.AnnotateStats:
    """The main job's cleaning stage: run it with the recipe's executor, print its summary."""
    vocab = prompts.resolve("vocab", recipe.vocabulary, ".tsv") if recipe.vocabulary else None
    workers = getattr(args, "workers", None)
    if workers is not None and workers < 1:
        raise UserError("--workers must be at least 1")
    d = recipe.filters.dedup
    executor = make_executor(recipe.executor, workers if recipe.executor.kind == "local" else None)
    with progress_bar() as progress:
        stats = run_annotate(corpus, recipe.filters, vocab, executor, progress=progress)
    console.print(f"near-dedup: threshold {d.threshold}, {d.num_perm} permutations -> {stats.bands} bands x {stats.rows} rows "
                  f"(false positive area {stats.fp:.4f}, false negative area {stats.fn:.4f})")
    if stats.nothing_to_do:
        console.print(f"annotate: nothing to do, {stats.docs} documents already annotated in {corpus.root}/annotated "
                      f"({stats.kept} kept)")
        return stats
    print_table(f"annotate: {corpus.root} ({stats.docs} documents, {stats.seconds:.1f} s, "
                f"{stats.docs / stats.seconds if stats.seconds else 0:.0f} docs/s)", ["outcome", "docs", "%"], reason_rows(stats))
    console.print(f"clusters of near/exact duplicates: {stats.clusters}; histogram: {stats.histogram}")
    return stats
