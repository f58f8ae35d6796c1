"""The dedup shuffle's tasks over the cleaning stage's work folder (no Ray here: plain functions a
Ray task, or a test, calls).

The work folder holds, per raw shard, `<name>.parquet` (id, `_reason`, `_key`, `_has_words`, ...)
and `<name>.npy` (its MinHash signatures), written by `filters.stage`'s step 1. Documents are named
by their global index: the shard's offset in corpus order plus the row. Each function reads one
shard, or one partition of the shuffle, or only the signature rows a bucket's pairs need (memory
mapped): none holds the whole corpus.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from filters import dedup_bands as db


def _metrics(work: str, name: str, columns: list[str]):
    return pq.read_table(Path(work) / f"{name}.parquet", columns=columns)


def exact_shard(work: str, name: str, offset: int, partitions: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """One shard's exact-dedup keys, split by partition."""
    keys = _metrics(work, name, ["_key"]).column("_key").to_pylist()
    return db.exact_entries(keys, offset, partitions)


def exact_bucket(*parts: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """One partition of keys from every shard -> [first, later] edges."""
    keys = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, "S1")
    idx = np.concatenate([p[1] for p in parts]) if parts else np.empty(0, np.int64)
    return db.exact_edges(keys, idx)


def band_shard(work: str, name: str, offset: int, exact_dup_rows: np.ndarray, bands: int, rows: int,
               partitions: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """One shard's band hashes for its documents with words that are not exact duplicates."""
    has_words = np.asarray(_metrics(work, name, ["_has_words"]).column("_has_words").to_numpy(zero_copy_only=False), bool)
    eligible = has_words.copy()
    eligible[exact_dup_rows] = False
    sigs = np.load(Path(work) / f"{name}.npy", mmap_mode="r")
    return db.band_entries(sigs, eligible, offset, bands, rows, partitions)


def signature_rows(work: str, names: list[str], offsets: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The signatures of documents `idx` (global indices), read from their shards' files."""
    shard = np.searchsorted(offsets, idx, side="right") - 1
    out = None
    for s in np.unique(shard):
        sel = shard == s
        m = np.load(Path(work) / f"{names[s]}.npy", mmap_mode="r")
        if out is None:
            out = np.empty((len(idx), m.shape[1]), dtype=m.dtype)
        out[sel] = m[idx[sel] - offsets[s]]
    return out if out is not None else np.empty((0, 0), np.uint32)


def band_bucket(work: str, names: list[str], offsets: np.ndarray, bands: int, rows: int,
                verify_jaccard: float | None, *parts: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """One band-hash partition from every shard -> candidate pairs -> the pairs that pass the
    agreement rule `deduplicate` applies (distinct [j, i], j < i)."""
    h = np.concatenate([p[0] for p in parts])
    idx = np.concatenate([p[1] for p in parts])
    cand = db.bucket_candidates(h, idx)
    if len(cand) == 0:
        return cand
    sig_j = signature_rows(work, names, offsets, cand[:, 0])
    sig_i = signature_rows(work, names, offsets, cand[:, 1])
    return db.verify_pairs(cand, sig_j, sig_i, bands, rows, verify_jaccard)


def lookup(work: str, name: str, rows: np.ndarray) -> tuple[list[str], list[str | None], np.ndarray]:
    """ids, exact keys and passed-the-filters flags of some rows of one shard."""
    t = _metrics(work, name, ["id", "_key", "_reason"]).take(rows)
    return t.column("id").to_pylist(), t.column("_key").to_pylist(), pc.is_null(t.column("_reason")).to_numpy(zero_copy_only=False)


def resolve(nodes: np.ndarray, roots: np.ndarray, exact_dup: np.ndarray, ids: list[str], keys: list[str | None],
            passed: np.ndarray) -> tuple[np.ndarray, list[tuple[str, str | None, str | None]]]:
    """For the clustered documents (`nodes`, sorted, with their `roots`; `exact_dup`, `ids`, `keys`,
    `passed` aligned with them): (representatives, [(cluster_id, duplicate_of, dedup_reason)]), the
    columns `filters.stage` writes."""
    rep = db.representatives(nodes, roots, passed)
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
    return rep, out


def dedup_columns(work: str, name: str, rows: list[int], values: list[tuple[str, str | None, str | None]]) -> dict[str, list]:
    """A shard's full dedup columns: its clustered rows from `values`, every other row its own cluster."""
    ids = _metrics(work, name, ["id"]).column("id").to_pylist()
    cols = {"cluster_id": list(ids), "duplicate_of": [None] * len(ids), "dedup_reason": [None] * len(ids)}
    for r, (cid, dup, reason) in zip(rows, values):
        cols["cluster_id"][r], cols["duplicate_of"][r], cols["dedup_reason"][r] = cid, dup, reason
    return cols
