"""The dedup shuffle as task functions over the cleaning stage's work folder: what any executor
runs (in this process, in a process pool, on Ray), each task one shard or one partition.

The work folder holds, per raw shard, `<name>.parquet` (id, `_reason`, `_key`, `_has_words`, ...)
and `<name>.npy` (its MinHash signatures), written by the stage's first step. The shuffle's files
go to `<work>/shuffle-<partitions>/`:
 - `<name>.exact.*.npy`, `<name>.bands.*.npy`: one shard's entries, sorted by partition, with the
   partition cuts (`.cuts.npy`, written last: its presence marks the shard done);
 - `exact-<p>.npy`, `near-<p>.npy`: one partition's edges [first, later] (global indices).
A task reads one shard, or one partition's slice of every shard's entries (memory mapped) and the
signature rows its candidate pairs need, in chunks: none holds the whole corpus, and a task run
twice writes the same bytes. Documents are named by their global index (shard offset + row).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from filters import dedup as dd

VERIFY_CHUNK = 50_000  # candidate pairs verified at a time (2 x 50,000 signatures of 512 bytes)


@dataclass(frozen=True)
class Shuffle:
    """Where a shuffle lives and its fixed parameters (sent to every task)."""

    work: str
    names: tuple[str, ...]
    offsets: tuple[int, ...]  # global index of each shard's first row (len(names) + 1 entries)
    partitions: int
    bands: int
    rows: int
    verify_jaccard: float | None

    @property
    def dir(self) -> Path:
        return Path(self.work) / f"shuffle-{self.partitions}"

    def shard_done(self, name: str, kind: str) -> bool:
        return (self.dir / f"{name}.{kind}.cuts.npy").exists()

    def bucket_path(self, kind: str, p: int) -> Path:
        return self.dir / f"{kind}-{p}.npy"


def _save(path: Path, a: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        np.save(f, a)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _save_parts(sh: Shuffle, name: str, kind: str, parts: list[tuple[np.ndarray, np.ndarray]]) -> None:
    sh.dir.mkdir(parents=True, exist_ok=True)
    cuts = np.r_[0, np.cumsum([len(p[1]) for p in parts])].astype(np.int64)
    _save(sh.dir / f"{name}.{kind}.key.npy", np.concatenate([p[0] for p in parts]))
    _save(sh.dir / f"{name}.{kind}.idx.npy", np.concatenate([p[1] for p in parts]))
    _save(sh.dir / f"{name}.{kind}.cuts.npy", cuts)  # last: the shard is done


def _load_partition(sh: Shuffle, kind: str, p: int) -> tuple[np.ndarray, np.ndarray]:
    keys, idx = [], []
    for name in sh.names:
        cuts = np.load(sh.dir / f"{name}.{kind}.cuts.npy")
        lo, hi = int(cuts[p]), int(cuts[p + 1])
        keys.append(np.load(sh.dir / f"{name}.{kind}.key.npy", mmap_mode="r")[lo:hi])
        idx.append(np.load(sh.dir / f"{name}.{kind}.idx.npy", mmap_mode="r")[lo:hi])
    return np.concatenate(keys), np.concatenate(idx)


def _metrics(work: str, name: str, columns: list[str]):
    return pq.read_table(Path(work) / f"{name}.parquet", columns=columns)


# ---- the tasks (one argument each: what `executor.map` sends) -------------------------------------
def exact_shard(sh: Shuffle, s: int) -> int:
    """Shard `s`'s exact-dedup keys, split by partition."""
    name = sh.names[s]
    keys = _metrics(sh.work, name, ["_key"]).column("_key").to_pylist()
    _save_parts(sh, name, "exact", dd.exact_entries(keys, sh.offsets[s], sh.partitions))
    return s


def exact_bucket(sh: Shuffle, p: int) -> int:
    """Partition `p` of every shard's keys -> [first, later] edges."""
    _save(sh.bucket_path("exact", p), dd.exact_edges(*_load_partition(sh, "exact", p)))
    return p


def band_shard(sh: Shuffle, task: tuple[int, np.ndarray]) -> int:
    """Shard `s`'s band hashes, for its documents with words that are not exact duplicates
    (`exact_dup_rows`, rows of this shard)."""
    s, exact_dup_rows = task
    name = sh.names[s]
    has_words = np.asarray(_metrics(sh.work, name, ["_has_words"]).column("_has_words").to_numpy(zero_copy_only=False), bool)
    eligible = has_words.copy()
    eligible[exact_dup_rows] = False
    sigs = np.load(Path(sh.work) / f"{name}.npy", mmap_mode="r")
    _save_parts(sh, name, "bands", dd.band_entries(sigs, eligible, sh.offsets[s], sh.bands, sh.rows, sh.partitions))
    return s


def signature_rows(sh: Shuffle, idx: np.ndarray) -> np.ndarray:
    """The signatures of documents `idx` (global indices), read from their shards' files."""
    offsets = np.asarray(sh.offsets)
    shard = np.searchsorted(offsets, idx, side="right") - 1
    out = None
    for s in np.unique(shard):
        sel = shard == s
        m = np.load(Path(sh.work) / f"{sh.names[s]}.npy", mmap_mode="r")
        if out is None:
            out = np.empty((len(idx), m.shape[1]), dtype=m.dtype)
        out[sel] = m[idx[sel] - offsets[s]]
    return out if out is not None else np.empty((0, 0), np.uint32)


def band_bucket(sh: Shuffle, p: int) -> int:
    """Partition `p` of every shard's band hashes -> candidate pairs -> the near-duplicate pairs."""
    cand = dd.bucket_candidates(*_load_partition(sh, "bands", p))
    kept = [np.empty((0, 2), np.int64)]
    for lo in range(0, len(cand), VERIFY_CHUNK):
        c = cand[lo:lo + VERIFY_CHUNK]
        kept.append(dd.verify_pairs(c, signature_rows(sh, c[:, 0]), signature_rows(sh, c[:, 1]),
                                    sh.bands, sh.rows, sh.verify_jaccard))
    _save(sh.bucket_path("near", p), np.concatenate(kept))
    return p


def edges(sh: Shuffle, kind: str) -> np.ndarray:
    """Every partition's edges of one kind, read back (small: one edge per duplicate and band)."""
    return np.concatenate([np.empty((0, 2), np.int64), *(np.load(sh.bucket_path(kind, p)) for p in range(sh.partitions))])


def lookup(sh: Shuffle, task: tuple[int, np.ndarray]) -> tuple[int, list[str], list[str | None], np.ndarray]:
    """ids, exact keys and passed-the-filters flags of some rows of shard `s`."""
    s, rows = task
    t = _metrics(sh.work, sh.names[s], ["id", "_key", "_reason"]).take(rows)
    return s, t.column("id").to_pylist(), t.column("_key").to_pylist(), pc.is_null(t.column("_reason")).to_numpy(zero_copy_only=False)


def resolve(nodes: np.ndarray, roots: np.ndarray, exact_dup: np.ndarray, ids: list[str], keys: list[str | None],
            passed: np.ndarray) -> list[tuple[str, str | None, str | None]]:
    """For the clustered documents (`nodes`, sorted, with their `roots`; `exact_dup`, `ids`, `keys`,
    `passed` aligned with them): [(cluster_id, duplicate_of, dedup_reason)]."""
    rep = dd.representatives(nodes, roots, passed)
    pos = np.searchsorted(nodes, rep)
    out = []
    for k in range(len(nodes)):
        r = int(pos[k])
        rid = ids[r]
        if r == k:
            out.append((rid, None, None))
            continue
        kind = "exact_duplicate" if exact_dup[k] and keys[k] == keys[r] else "near_duplicate"
        out.append((rid, rid, f"{kind}:{rid}"))
    return out


def dedup_columns(ids: list[str], rows: list[int], values: list[tuple[str, str | None, str | None]]) -> dict[str, list]:
    """A shard's full dedup columns: its clustered rows from `values`, every other row its own cluster."""
    cols = {"cluster_id": list(ids), "duplicate_of": [None] * len(ids), "dedup_reason": [None] * len(ids)}
    for r, (cid, dup, reason) in zip(rows, values):
        cols["cluster_id"][r], cols["duplicate_of"][r], cols["dedup_reason"][r] = cid, dup, reason
    return cols
