"""The `ray` executor: the stages' shard tasks on a Ray cluster (joined at `address`, or a local
Ray started for the run and stopped after it).

- generation: one task per shard still to do; each worker process builds its own backend once
  (a model, a client, a vLLM engine: `num_gpus` per task) and keeps it for the shards it gets;
  the task writes its shard file and the driver registers it in the manifest.
- annotation: step 1 (metrics + MinHash signatures) one task per shard; MinHash dedup as a
  shuffle: exact keys and band hashes per shard, partitioned by hash; one task per partition
  finds and verifies its pairs; connected components over the edge list (one edge per duplicate);
  then one task per shard writes `annotated` and `clean`.
Every task is idempotent (atomic writes, same bytes on a re-run), so Ray's retries of a task whose
worker died (`max_retries`) leave a complete corpus without duplicates.
"""
from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from corpora import Corpus
from corpora.store import CorpusError, write_parquet_atomic
from tinyschool.executors import ExecutorConfig, ExecutorError
from tinyschool.executors import shuffle_dedup as sd

FAULT_ENV = "TINYSCHOOL_FAULT_DIR"


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ExecutorError("executor kind 'ray' needs Ray, which is not installed: pip install 'tinyschool[ray]'") from None
    return ray


def maybe_fail(tag: str) -> None:
    """Fault injection for tests: when `$TINYSCHOOL_FAULT_DIR/<tag>` exists, remove it, leave
    `<tag>.killed`, and SIGKILL this worker process (Ray then retries the task elsewhere)."""
    d = os.environ.get(FAULT_ENV)
    if not d:
        return
    marker = Path(d) / tag.replace(":", "_")
    try:
        marker.unlink()
    except FileNotFoundError:
        return
    marker.with_name(marker.name + ".killed").write_text(str(os.getpid()))
    os.kill(os.getpid(), signal.SIGKILL)


def _reachable(address: str, timeout: float = 10.0) -> None:
    """Fail fast on a host:port nobody listens on (Ray itself retries for minutes)."""
    import socket

    hostport = address.removeprefix("ray://")
    if address == "auto" or ":" not in hostport:
        return
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except (OSError, ValueError) as e:
        raise ConnectionError(f"nothing answers ({e})") from None


# ---- the tasks (plain functions: Ray runs them in its worker processes) -------------------------
_BACKEND: dict[str, Any] = {}


def _worker_backend(key: str, factory: Callable[[], Any]):
    """One backend per worker process, built on the first shard it gets and kept for the next."""
    if _BACKEND.get("key") != key:
        old = _BACKEND.pop("backend", None)
        if old is not None:
            old.close()
        _BACKEND.update(key=key, backend=factory())
    return _BACKEND["backend"]


def generate_task(root: str, recipe_name: str, cfg, name: str, shard_items: list, missing: list, kept: dict,
                  backend_key: str, backend_factory: Callable[[], Any], postprocess, sub_batch: int | None):
    from generators.cache import RequestCache
    from generators.runner import GenerationStats, generate_shard
    from generators.templates import apply_slot_overrides, load_template

    t = apply_slot_overrides(load_template(cfg.template), cfg.slot_overrides)
    stats = GenerationStats()
    cache = RequestCache(cfg.cache)
    try:
        table = generate_shard(shard_items, missing, kept, t, cfg, lambda: _worker_backend(backend_key, backend_factory),
                               cache, recipe_name, stats, postprocess, sub_batch)
    finally:
        cache.close()
    write_parquet_atomic(table, Corpus(root).shard_path("raw", name))
    maybe_fail(f"generate:{name}")
    return table.num_rows, stats


def annotate_task(root: str, work: str, name: str, cfg_json: str, vocab_path: str | None):
    from filters.stage import _step1

    out = _step1(root, work, name, cfg_json, vocab_path)
    maybe_fail(f"annotate:{name}")
    return out


def exact_bucket_task(p: int, *parts):
    out = sd.exact_bucket(*parts)
    maybe_fail(f"exact_bucket:{p}")
    return out


def band_bucket_task(p: int, work, names, offsets, bands, rows, verify, *parts):
    out = sd.band_bucket(work, names, offsets, bands, rows, verify, *parts)
    maybe_fail(f"band_bucket:{p}")
    return out


def write_task(root: str, work: str, name: str, rows: list[int], values: list):
    from filters.stage import _step3

    out = _step3(root, work, name, sd.dedup_columns(work, name, rows, values))
    maybe_fail(f"write:{name}")
    return out


# ---- the driver ----------------------------------------------------------------------------------
class RayExecutor:
    def __init__(self, cfg: ExecutorConfig | None = None):
        self.cfg = cfg or ExecutorConfig(kind="ray")
        self.ray = _import_ray()

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Use the Ray this process is connected to, or connect/start one for the run (and stop it after)."""
        ray = self.ray
        if ray.is_initialized():
            yield
            return
        c = self.cfg
        try:
            if c.address:
                _reachable(c.address)
                ray.init(address=c.address, log_to_driver=False)
            else:
                ray.init(num_cpus=math.ceil(c.num_workers * c.num_cpus), include_dashboard=False, log_to_driver=False,
                         object_store_memory=c.object_store_mb * 2**20 if c.object_store_mb else None)
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = f"at {c.address}" if c.address else "locally"
            raise ExecutorError(f"executor: cannot start or reach Ray {where}: {str(e).splitlines()[0] if str(e) else e}") from None
        try:
            yield
        finally:
            ray.shutdown()

    def _remote(self, fn: Callable, **opts: Any):
        c = self.cfg
        base: dict[str, Any] = {"num_cpus": c.num_cpus, "max_retries": c.max_retries}
        if c.memory_gb:
            base["memory"] = int(c.memory_gb * 2**30)
        return self.ray.remote(fn).options(**{**base, **opts})

    def get(self, refs):
        """`ray.get`, with a task's own exception re-raised as itself (one clear line, as on one
        machine) and a task that died more often than `max_retries` allows as an ExecutorError."""
        exc = self.ray.exceptions
        try:
            return self.ray.get(refs)
        except exc.RayTaskError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None
            raise
        except (exc.WorkerCrashedError, exc.NodeDiedError, exc.ObjectLostError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ExecutorError(f"executor: a Ray task failed {self.cfg.max_retries + 1} times ({type(e).__name__}: {first})") from None

    def _as_completed(self, submits: Iterable[tuple[Any, Callable[[], Any]]]) -> Iterator[tuple[Any, Any]]:
        """(meta, submit) -> (meta, result) as tasks finish, at most `num_workers` in flight."""
        ray = self.ray
        pending = iter(submits)
        flight: dict[Any, Any] = {}
        while True:
            while len(flight) < self.cfg.num_workers:
                nxt = next(pending, None)
                if nxt is None:
                    break
                flight[nxt[1]()] = nxt[0]
            if not flight:
                return
            done, _ = ray.wait(list(flight), num_returns=1)
            for ref in done:
                yield flight.pop(ref), self.get(ref)

    # ---- generation ------------------------------------------------------------------------------
    def run_generation(self, corpus: Corpus, recipe_name: str, cfg, backend_factory: Callable[[], Any],
                       recipe_dict: dict[str, Any] | None = None, progress: Any = None, postprocess=None,
                       sub_batch: int | None = None):
        from generators.runner import run_generation, shard_name

        backend_key = cfg.backend.model_dump_json() if hasattr(cfg, "backend") else repr(backend_factory)

        def run_shards(todo, shards, t, stats, progress):
            task = progress.add_task("generate", total=sum(len(m) for _, m, _ in todo)) if progress is not None else None
            fn = self._remote(generate_task, num_gpus=self.cfg.num_gpus)
            root = str(corpus.root)
            submits = []
            for k, missing, kept in todo:
                name = shard_name(k)
                args = (root, recipe_name, cfg, name, shards[k], missing, kept, backend_key, backend_factory, postprocess, sub_batch)
                submits.append(((name, len(missing)), lambda a=args: fn.remote(*a)))
            for (name, n), (rows, s) in self._as_completed(submits):
                corpus.register_shard("raw", name, rows)
                for f in ("requests", "ok", "failed", "retries", "cache_hits", "prompt_tokens", "completion_tokens"):
                    setattr(stats, f, getattr(stats, f) + getattr(s, f))
                stats.failed_by_kind.update(s.failed_by_kind)
                stats.shards_written += 1
                if task is not None:
                    progress.advance(task, n)

        with self.session():
            return run_generation(corpus, recipe_name, cfg, backend_factory, recipe_dict=recipe_dict, progress=progress,
                                  postprocess=postprocess, sub_batch=sub_batch, run_shards=run_shards)

    # ---- annotation ------------------------------------------------------------------------------
    def run_annotate(self, corpus: Corpus, cfg, vocab_path: str | Path | None, progress: Any = None, workers: int = 2,
                     report_dir: str | Path | None = None):
        """`filters.stage.run_annotate` with its steps as Ray tasks (same fingerprint, resume, outputs)."""
        from filters import stage as st
        from filters.dedup import optimal_bands

        t0 = time.time()
        stats = st.AnnotateStats()
        entries = corpus.shard_entries("raw")
        if not entries:
            raise CorpusError(f"{corpus.root}: no raw shards to annotate (run `tinyschool generate` first)")
        fp, info = st.fingerprint(corpus, cfg, vocab_path)
        stats.shards = len(entries)
        stats.docs = sum(e["rows"] for e in entries.values())
        b, r, fpp, fnp = optimal_bands(cfg.dedup.threshold, cfg.dedup.num_perm, cfg.dedup.false_positive_weight)
        stats.bands, stats.rows, stats.fp, stats.fn = b, r, fpp, fnp
        m = corpus.manifest()["stages"]
        prev = m.get("annotated", {}).get("info", {}).get("fingerprint")
        if prev == fp and corpus.is_complete("annotated") and corpus.is_complete("clean"):
            stats.nothing_to_do = True
            st._fill_from_info(stats, m["annotated"]["info"])
            stats.seconds = time.time() - t0
            return stats
        if prev != fp:
            corpus.clear_stage("annotated")
            corpus.clear_stage("clean")

            def start(man):
                man["stages"]["annotated"]["info"] = {"fingerprint": fp, "in_progress": True}
            corpus.update_manifest(start)
        work_root = corpus.root / st.WORK_DIR
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
        clock = time.time()

        def lap(phase: str) -> None:  # the same phases as the local stage reports
            nonlocal clock
            now = time.time()
            stats.phase_seconds[phase] = round(now - clock, 2)
            clock = now

        with self.session():
            lap("load")
            # step 1: metrics and signatures, one task per shard
            todo = [n for n in names if not (work / f"{n}.parquet").exists() or not (work / f"{n}.npy").exists()]
            task = progress.add_task("annotate", total=stats.docs) if progress is not None else None
            if task is not None:
                progress.advance(task, sum(entries[n]["rows"] for n in names if n not in todo))
            fn = self._remote(annotate_task)
            for _, (_, n_rows) in self._as_completed([(n, lambda n=n: fn.remote(root, str(work), n, cfg_json, vp)) for n in todo]):
                stats.shards_annotated += 1
                if task is not None:
                    progress.advance(task, n_rows)
            lap("annotate")
            # step 2: the dedup shuffle
            task = progress.add_task("dedup", total=stats.docs) if progress is not None else None
            columns, stats.clusters = self.dedup(str(work), names, rows, cfg.dedup, (b, r))
            if task is not None:
                progress.advance(task, stats.docs)
            lap("dedup")
            # step 3: write annotated + clean, one task per shard
            done = set(corpus.shard_entries("annotated")) & set(corpus.shard_entries("clean"))
            task = progress.add_task("write", total=len(names)) if progress is not None else None
            if task is not None:
                progress.advance(task, len(done))
            fn = self._remote(write_task)
            submits = [(n, lambda n=n: fn.remote(root, str(work), n, *columns.get(n, ([], []))))
                       for n in names if n not in done]
            for _ in self._as_completed(submits):  # the task registered its shards (a retry rewrites the same bytes)
                stats.shards_written += 1
                if task is not None:
                    progress.advance(task, 1)
            lap("write")
        return st.finish_annotate(corpus, stats, fp, info["raw"], (b, r), report_dir, work, work_root, t0, lap)

    def dedup(self, work: str, names: list[str], rows: list[int], d, bands: tuple[int, int]
              ) -> tuple[dict[str, tuple[list[int], list]], int]:
        """Exact + MinHash dedup of the work folder's shards as a shuffle. Returns, per shard with
        clustered rows, (rows, [(cluster_id, duplicate_of, dedup_reason)]), and the cluster count.
        Partitions move between tasks as Ray objects; the driver sees only the edge list (one edge
        per duplicate) and the ids of clustered documents."""
        from filters.dedup_bands import components

        b, r = bands
        P = self.cfg.partitions or max(2, 2 * self.cfg.num_workers)
        offsets = np.r_[0, np.cumsum(rows)].astype(np.int64)
        empty = np.empty((0, 2), np.int64)
        exact_e = empty
        if d.exact:
            shard = self._remote(sd.exact_shard, num_returns=P)
            parts = [shard.remote(work, n, int(offsets[s]), P) for s, n in enumerate(names)]
            bucket = self._remote(exact_bucket_task)
            exact_e = np.concatenate([empty, *self.get([bucket.remote(p, *[x[p] for x in parts]) for p in range(P)])])
            del parts
        exact_dup = np.unique(exact_e[:, 1])
        near_e = empty
        if d.near:
            cut = np.searchsorted(exact_dup, offsets)
            shard = self._remote(sd.band_shard, num_returns=P)
            parts = [shard.remote(work, n, int(offsets[s]), exact_dup[cut[s]:cut[s + 1]] - offsets[s], b, r, P)
                     for s, n in enumerate(names)]
            bucket = self._remote(band_bucket_task)
            bargs = (work, names, offsets, b, r, d.verify_jaccard)
            near_e = np.concatenate([empty, *self.get([bucket.remote(p, *bargs, *[x[p] for x in parts]) for p in range(P)])])
            del parts
        nodes, roots = components(np.concatenate([exact_e, near_e]))
        # ids, keys and filter outcomes of the clustered documents only, read where they live
        shard_of = np.searchsorted(offsets, nodes, side="right") - 1
        lookup = self._remote(sd.lookup)
        sels = {int(s): np.flatnonzero(shard_of == s) for s in np.unique(shard_of)}
        got = dict(zip(sels, self.get([lookup.remote(work, names[s], nodes[sel] - offsets[s]) for s, sel in sels.items()])))
        ids: list = [None] * len(nodes)
        keys: list = [None] * len(nodes)
        passed = np.zeros(len(nodes), bool)
        for s, sel in sels.items():
            i_, k_, p_ = got[s]
            for j, q in enumerate(sel.tolist()):
                ids[q], keys[q] = i_[j], k_[j]
            passed[sel] = p_
        _, values = sd.resolve(nodes, roots, np.isin(nodes, exact_dup), ids, keys, passed)
        columns = {names[s]: ((nodes[sel] - offsets[s]).tolist(), [values[q] for q in sel.tolist()]) for s, sel in sels.items()}
        return columns, int(len(np.unique(roots)))
