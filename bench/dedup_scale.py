"""MinHash dedup of N synthetic stories (default 1M), the cleaning stage's dedup step: the shuffle by
band key (per-shard tasks, one task per partition, components over the edge list) run by the
`local` executor (a pool of 2 processes) and by the `ray` executor (2 workers), on this machine;
with `--oracle` (default up to 200,000 stories) also datasketch's MinHashLSH over every signature in
one process (tests/dedup_oracle.py: the reference, and what the local stage ran before).

    python bench/dedup_scale.py                 # 1M stories, 2 workers
    python bench/dedup_scale.py --docs 100000   # smaller

Setup (not timed in the comparison, reported): synthetic stories are written shard by shard and
turned into the work folder the cleaning stage's step 1 writes (per shard: ids, exact keys and
MinHash signatures of 5-word shingles), in a process pool. ~10% of the stories are near copies
(a few words changed) and ~3% exact copies of earlier ones, anywhere in the corpus.
Then each mode runs in its own subprocess, so that its peak memory is its own: docs/s and the peak
RSS (VmHWM) of the driver and of every worker process. Every mode must find the same clusters.
Ends with one JSON line: ours = local docs/s, reference = datasketch docs/s (null when not run),
`local_peak_mb` (the largest process of the local run), `ray_driver_peak_mb`.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "tests"))  # dedup_oracle: the datasketch reference

SHINGLE = 5


# ---- synthetic stories ---------------------------------------------------------------------------
VOCAB = 3000
_M = np.uint64(0xFFFFFFFFFFFFFFFF)


def _h(*parts) -> np.ndarray:
    """A splitmix64 hash of integer arrays (broadcast): the stories' only source of randomness, so
    any story can be rebuilt from its index alone, in any shard, vectorized."""
    from filters.text import mix64

    h = np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        for x in parts:
            h = mix64(np.asarray(x, dtype=np.uint64) ^ (h * np.uint64(0xBF58476D1CE4E5B9)))
    return h


def _words() -> list[str]:
    from wordfreq import top_n_list

    return [w for w in top_n_list("en", 4000) if w.isalpha()][:VOCAB]


def stories(start: int, stop: int, seed: int) -> list[np.ndarray]:
    """Stories [start, stop) as word ids: ~10% near copies of an earlier story (1-4 words replaced),
    ~3% exact copies, anywhere in the corpus; the rest fresh (60-159 words)."""
    i = np.arange(start, stop, dtype=np.uint64)
    u = (_h(seed, i, 1) >> np.uint64(11)).astype(np.float64) / 2.0**53
    src = np.where(i > 0, _h(seed, i, 2) % np.maximum(i, 1), 0).astype(np.uint64)
    kind = np.where((i > 0) & (u < 0.10), 1, np.where((i > 0) & (u < 0.13), 2, 0))  # 1 near, 2 exact
    base = np.where(kind > 0, src, i)
    lens = (60 + _h(seed, base, 3) % np.uint64(100)).astype(np.int64)
    ends = np.cumsum(lens)
    flat_story = np.repeat(base, lens)
    pos = np.arange(ends[-1] if len(ends) else 0) - np.repeat(ends - lens, lens)
    flat = (_h(seed, flat_story, 4, pos) % np.uint64(VOCAB)).astype(np.int64)
    out = np.split(flat, ends[:-1])
    for k in np.flatnonzero(kind == 1).tolist():
        w = out[k].copy()
        n = int(1 + _h(seed, i[k], 5) % np.uint64(4))
        at = (_h(seed, i[k], 6, np.arange(n)) % np.uint64(len(w))).astype(np.int64)
        w[at] = (_h(seed, i[k], 7, np.arange(n)) % np.uint64(VOCAB)).astype(np.int64)
        out[k] = w
    return out


def _text(ids: np.ndarray, words: list[str]) -> str:
    toks = [words[j] for j in ids]
    out = []
    for s in range(0, len(toks), 12):
        out.append(" ".join(toks[s:s + 12]).capitalize() + ".")
    return " ".join(out)


def shard_arrays(start: int, stop: int, seed: int) -> tuple[list[str], list[str], list[bool], np.ndarray]:
    """ids, exact keys, has-words flags and MinHash signatures of stories [start, stop): what step 1
    of the cleaning stage computes from their texts, computed from the word ids directly (a story's
    tokens are its words, lower-cased; the key hashes the word ids, equal exactly when the normalized
    texts are). `text_arrays` does it through the stage's own `Doc` and `shingle_hashes`; the
    bench checks on a sample that both give the same signatures."""
    from filters.minhash import MinHasher, mix64_to32
    from filters.text import ngram_hashes, token_hashes

    th_all = token_hashes(_words())
    ids, keys, has_words, shingles = [], [], [], []
    for k, w in enumerate(stories(start, stop, seed)):
        ids.append(f"story{start + k:08d}")
        has_words.append(len(w) > 0)
        keys.append(hashlib.blake2b(w.astype(np.int16).tobytes(), digest_size=16).hexdigest())
        shingles.append(mix64_to32(ngram_hashes(th_all[w], min(SHINGLE, len(w)))))
    return ids, keys, has_words, MinHasher(128, 1).signatures(shingles)


def text_arrays(start: int, stop: int, seed: int) -> np.ndarray:
    """The signatures of the same stories from their texts, through the stage's own `Doc`."""
    from filters.minhash import MinHasher, shingle_hashes
    from filters.text import Doc

    words = _words()
    return MinHasher(128, 1).signatures([shingle_hashes(Doc(str(i), _text(w, words)), SHINGLE)
                                         for i, w in enumerate(stories(start, stop, seed))])


def make_shard(work: str, name: str, start: int, stop: int, seed: int) -> int:
    """Write the work folder's files for stories [start, stop): what step 1 of the cleaning stage writes."""
    ids, keys, has_words, sigs = shard_arrays(start, stop, seed)
    np.save(Path(work) / f"{name}.npy", sigs)
    reason = [None if j % 17 else "length:too_short" for j in range(start, stop)]  # some fail a filter
    pq.write_table(pa.table({"id": ids, "_reason": pa.array(reason, pa.string()), "_key": keys,
                             "_has_words": has_words}), Path(work) / f"{name}.parquet")
    return stop - start


def setup(work: Path, docs: int, shard_size: int, seed: int, workers: int) -> dict:
    meta_path = work / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta == {**meta, "docs": docs, "shard_size": shard_size, "seed": seed, "version": 2}:
            return meta
    work.mkdir(parents=True, exist_ok=True)
    n = min(docs, 200)
    if not np.array_equal(shard_arrays(0, n, seed)[3], text_arrays(0, n, seed)):
        sys.exit("setup: signatures from word ids differ from the stage's signatures of the texts")
    t0 = time.time()
    names, rows, calls = [], [], []
    for k, start in enumerate(range(0, docs, shard_size)):
        stop = min(docs, start + shard_size)
        names.append(f"part-{k:05d}")
        rows.append(stop - start)
        calls.append((str(work), names[-1], start, stop, seed))
    with ProcessPoolExecutor(workers) as ex:
        list(ex.map(make_shard, *zip(*calls)))
    meta = {"docs": docs, "shard_size": shard_size, "seed": seed, "version": 2, "names": names, "rows": rows,
            "setup_s": round(time.time() - t0, 1)}
    meta_path.write_text(json.dumps(meta))
    return meta


# ---- peak memory ---------------------------------------------------------------------------------
def _hwm(pid: int) -> tuple[str, int] | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return cmd, int(line.split()[1]) * 1024
    return None


class PeakMemory:
    """Peak RSS (VmHWM) of this process and all its descendants, sampled until stopped."""

    def __init__(self, every: float = 0.25):
        import psutil

        self.psutil, self.every, self.peak = psutil, every, {}
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _sample(self):
        me = self.psutil.Process()
        for p in [me, *me.children(recursive=True)]:
            got = _hwm(p.pid)
            if got is None:
                continue
            try:
                cmd = " ".join(p.cmdline()[:3])
                name = cmd if ("default_worker" in cmd or "ray::" in cmd) else p.name()
            except self.psutil.Error:
                name = got[0]
            key = p.pid
            if got[1] > self.peak.get(key, ("", 0))[1]:
                self.peak[key] = (name, got[1])

    def _run(self):
        while not self._stop.wait(self.every):
            self._sample()

    def stop(self) -> list[dict]:
        self._sample()
        self._stop.set()
        self._t.join()
        me = os.getpid()
        out = []
        for pid, (name, rss) in sorted(self.peak.items()):
            kind = "driver" if pid == me else ("ray worker" if "default_worker" in name or "ray::" in name else name.split("/")[-1][:40])
            out.append({"pid": pid, "process": kind, "peak_rss_mb": round(rss / 2**20, 1)})
        # the largest child that has exited and been waited for (a pool worker the sampler may have missed)
        import resource

        kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        if kids:
            out.append({"pid": 0, "process": "largest exited child (getrusage)", "peak_rss_mb": round(kids / 2**20, 1)})
        return out


# ---- the two modes -------------------------------------------------------------------------------
def _digest(columns: dict[str, tuple[list[int], list]]) -> str:
    h = hashlib.sha256()
    for name in sorted(columns):
        rows, values = columns[name]
        for r, v in sorted(zip(rows, values)):
            h.update(json.dumps([name, r, *v]).encode())
    return h.hexdigest()


def _result(seconds: float, columns: dict, clusters: int) -> dict:
    return {"seconds": seconds, "clusters": clusters, "digest": _digest(columns),
            "duplicates": int(sum(v[1] is not None for _, vs in columns.values() for v in vs))}


def _shuffle(executor, work: Path, meta: dict) -> dict:
    from filters.config import DedupConfig
    from filters.dedup import optimal_bands
    from tinyschool.stages.annotate import dedup

    d = DedupConfig()
    b, r = optimal_bands(d.threshold, d.num_perm, d.false_positive_weight)[:2]
    for old in work.glob("shuffle-*"):  # a previous mode's shuffle files: not reused
        shutil.rmtree(old)
    t0 = time.time()
    columns, clusters = dedup(executor, str(work), meta["names"], meta["rows"], d, (b, r))
    out = _result(time.time() - t0, columns, clusters)
    for old in work.glob("shuffle-*"):
        shutil.rmtree(old)
    return out


def run_local(work: Path, meta: dict, workers: int) -> dict:
    from tinyschool.executors import ExecutorConfig, make_executor

    return _shuffle(make_executor(ExecutorConfig(num_workers=workers)), work, meta)


def run_ray(work: Path, meta: dict, workers: int, object_store_mb: int):
    import ray

    from tinyschool.executors import ExecutorConfig, make_executor

    os.environ.setdefault("RAY_raylet_start_wait_time_s", "180")  # a loaded machine starts Ray slowly
    ray.init(num_cpus=workers, object_store_memory=object_store_mb * 2**20, include_dashboard=False, log_to_driver=False)
    return _shuffle(make_executor(ExecutorConfig(kind="ray", num_workers=workers)), work, meta), ray


def run_oracle(work: Path, meta: dict) -> dict:
    """datasketch's LSH over every key and signature gathered in one process (the old local step)."""
    import pyarrow.compute as pc
    from dedup_oracle import datasketch_deduplicate

    from filters.config import DedupConfig
    from filters.dedup import optimal_bands

    d = DedupConfig()
    b, r = optimal_bands(d.threshold, d.num_perm, d.false_positive_weight)[:2]
    t0 = time.time()
    ids, keys, has_words, passed, sigs = [], [], [], [], []
    for n in meta["names"]:
        t = pq.read_table(work / f"{n}.parquet")
        ids += t.column("id").to_pylist()
        keys += t.column("_key").to_pylist()
        has_words += t.column("_has_words").to_pylist()
        passed += pc.is_null(t.column("_reason")).to_pylist()
        sigs.append(np.load(work / f"{n}.npy"))
    signatures = np.concatenate(sigs)
    del sigs
    res = datasketch_deduplicate(keys, signatures, np.array(has_words), np.array(passed), exact=d.exact, near=d.near,
                                 threshold=d.threshold, verify_jaccard=d.verify_jaccard, fp_weight=d.false_positive_weight,
                                 seed=d.seed, bands=(b, r))
    columns: dict[str, tuple[list[int], list]] = {}
    offsets = np.r_[0, np.cumsum(meta["rows"])]
    for i in np.flatnonzero(res.representative >= 0).tolist():
        rep = int(res.representative[i])
        s = int(np.searchsorted(offsets, i, side="right") - 1)
        dup = rep != i
        reason = None if not dup else (f"exact_duplicate:{ids[rep]}" if res.exact_dup[i] and keys[i] == keys[rep] else f"near_duplicate:{ids[rep]}")
        rows, values = columns.setdefault(meta["names"][s], ([], []))
        rows.append(i - int(offsets[s]))
        values.append((ids[rep], ids[rep] if dup else None, reason))
    return _result(time.time() - t0, columns, int(len(np.unique(res.cluster[res.cluster >= 0]))))


def child(args) -> None:
    work = Path(args.dir)
    meta = json.loads((work / "meta.json").read_text())
    mem = PeakMemory()
    if args.mode == "local":
        out = run_local(work, meta, args.workers)
        out["memory"] = mem.stop()
    elif args.mode == "oracle":
        out = run_oracle(work, meta)
        out["memory"] = mem.stop()
    else:
        out, ray = run_ray(work, meta, args.workers, args.object_store_mb)
        out["memory"] = mem.stop()  # before shutdown: the workers are still there to be read
        ray.shutdown()
    print("RESULT " + json.dumps(out), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--shard-size", type=int, default=50_000)
    ap.add_argument("--workers", type=int, default=2, help="Ray workers (CPUs of the local Ray) and setup processes")
    ap.add_argument("--object-store-mb", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", default=None, help="work folder (default /tmp/tinyschool-dedup-scale-<docs>; kept for re-runs)")
    ap.add_argument("--oracle", action=argparse.BooleanOptionalAction, default=None,
                    help="also run datasketch's MinHashLSH in one process (default: up to 200,000 stories; ~8 GB at 1M)")
    ap.add_argument("--no-ray", action="store_true", help="leave out the Ray run (e.g. when Ray cannot start here)")
    ap.add_argument("--mode", choices=["local", "ray", "oracle"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.dir = args.dir or f"/tmp/tinyschool-dedup-scale-{args.docs}"
    if args.mode:
        return child(args)
    meta = setup(Path(args.dir), args.docs, args.shard_size, args.seed, args.workers)
    print(f"setup: {args.docs} stories in {len(meta['names'])} shards, signatures written in {meta['setup_s']} s "
          f"({args.docs / max(meta['setup_s'], 1e-9):.0f} docs/s with {args.workers} processes; reused when present)")
    oracle = args.oracle if args.oracle is not None else args.docs <= 200_000
    results = {}
    for mode in ("local", *([] if args.no_ray else ["ray"]), *(["oracle"] if oracle else [])):
        cmd = [sys.executable, __file__, "--mode", mode, "--dir", args.dir, "--docs", str(args.docs),
               "--workers", str(args.workers), "--object-store-mb", str(args.object_store_mb)]
        p = subprocess.run(cmd, capture_output=True, text=True)
        line = next((x for x in p.stdout.splitlines() if x.startswith("RESULT ")), None)
        if p.returncode != 0 or line is None:
            sys.exit(f"{mode} run failed (exit {p.returncode}):\n{p.stderr[-3000:]}")
        results[mode] = json.loads(line[len("RESULT "):])
    for mode, r in results.items():
        r["docs_per_s"] = args.docs / r["seconds"]
        print(f"\n{mode}: {r['seconds']:.1f} s, {r['docs_per_s']:.0f} docs/s, {r['clusters']} clusters, {r['duplicates']} duplicates")
        print(f"  {'pid':>8}  {'process':<42} peak RSS (MB)")
        for m in r["memory"]:
            print(f"  {m['pid']:>8}  {m['process']:<42} {m['peak_rss_mb']:>10.1f}")
        r["driver_peak_mb"] = next(m["peak_rss_mb"] for m in r["memory"] if m["process"] == "driver")
        r["max_peak_mb"] = max(m["peak_rss_mb"] for m in r["memory"])
        workers = [m["peak_rss_mb"] for m in r["memory"] if m["process"] == "ray worker"]
        r["max_worker_peak_mb"] = max(workers) if workers else None
    same = len({r["digest"] for r in results.values()}) == 1
    print(f"\nsame clusters, representatives and reasons in every mode ({', '.join(results)}): {same}")
    loc, ray_, ora = results["local"], results.get("ray"), results.get("oracle")
    print(f"peak memory of the largest process: local {loc['max_peak_mb']:.0f} MB (driver {loc['driver_peak_mb']:.0f} MB)"
          + (f", ray driver {ray_['driver_peak_mb']:.0f} MB, largest Ray worker {ray_['max_worker_peak_mb'] or 0:.0f} MB" if ray_ else "")
          + (f", datasketch in one process {ora['max_peak_mb']:.0f} MB" if ora else ""))
    print(json.dumps({"metric": "docs_per_s", "ours": round(loc["docs_per_s"]),
                      "reference": round(ora["docs_per_s"]) if ora else None,
                      "ratio": round(loc["docs_per_s"] / ora["docs_per_s"], 2) if ora else None,
                      "ray_docs_per_s": round(ray_["docs_per_s"]) if ray_ else None, "docs": args.docs, "identical": same,
                      "local_peak_mb": loc["max_peak_mb"], "ray_driver_peak_mb": ray_["driver_peak_mb"] if ray_ else None,
                      "ray_max_worker_peak_mb": ray_["max_worker_peak_mb"] if ray_ else None,
                      "oracle_peak_mb": ora["max_peak_mb"] if ora else None}))
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
