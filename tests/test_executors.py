"""The executor contract on one machine, and the dedup shuffle over a work folder run by it: the
clusters `filters.dedup.deduplicate` finds in memory (and datasketch's), resumed from its files."""
from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dedup_oracle import datasketch_deduplicate
from filters.config import DedupConfig
from filters.dedup import deduplicate, optimal_bands
from test_dedup_bands import planted
from tinyschool.executors import ExecutorConfig, make_executor, shuffle_partitions
from tinyschool.stages.annotate import dedup

_LOADED: dict[str, int] = {}


def _pid_and_square(x: int) -> tuple[int, int, int]:
    return x, x * x, os.getpid()


def _loaded(x: int) -> int:
    return _LOADED.get("by", -1)


def _boom(x: int) -> int:
    if x == 3:
        raise ValueError(f"bad input {x}")
    return x


def test_local_map_in_a_pool_and_in_process():
    ex = make_executor(ExecutorConfig(num_workers=2))
    got = list(ex.map(_pid_and_square, range(10)))
    assert sorted((x, y) for x, y, _ in got) == [(x, x * x) for x in range(10)]
    assert os.getpid() not in {p for _, _, p in got}  # a pool of other processes
    assert {p for _, _, p in ex.map(_pid_and_square, range(4), processes=1)} == {os.getpid()}
    # setup runs here before the workers start, so they inherit what it loaded
    assert set(ex.map(_loaded, range(4), setup=lambda: _LOADED.update(by=os.getpid()))) == {os.getpid()}
    with pytest.raises(ValueError, match="bad input 3"):  # a task's own error, as itself
        list(ex.map(_boom, range(6)))


def test_partitions_grow_with_the_corpus():
    assert shuffle_partitions(ExecutorConfig(num_workers=2), 1_000) == 4
    assert shuffle_partitions(ExecutorConfig(num_workers=2), 1_000_000) == 10
    assert shuffle_partitions(ExecutorConfig(num_workers=2, partitions=3), 1_000_000) == 3


def _work_folder(tmp_path, keys, sigs, has_words, passed, shard_rows):
    names, start = [], 0
    for k, n in enumerate(shard_rows):
        name = f"part-{k:05d}"
        sl = slice(start, start + n)
        pq.write_table(pa.table({"id": [f"d{i:05d}" for i in range(start, start + n)],
                                 "_reason": pa.array([None if p else "length:too_short" for p in passed[sl]], pa.string()),
                                 "_key": pa.array(keys[sl], pa.string()), "_has_words": has_words[sl]}),
                       tmp_path / f"{name}.parquet")
        np.save(tmp_path / f"{name}.npy", sigs[sl])
        names.append(name)
        start += n
    return names


@pytest.mark.parametrize("workers", [1, 2])
def test_the_shuffle_over_a_work_folder_finds_the_in_memory_clusters(tmp_path, workers):
    keys, sigs, has_words, passed = planted(400, 11)
    n = len(keys)
    shard_rows = [n // 3, n // 3, n - 2 * (n // 3)]
    names = _work_folder(tmp_path, keys, sigs, has_words, passed, shard_rows)
    d = DedupConfig()
    b, r = optimal_bands(d.threshold, d.num_perm, d.false_positive_weight)[:2]
    ex = make_executor(ExecutorConfig(num_workers=workers, partitions=3))
    columns, clusters = dedup(ex, str(tmp_path), names, shard_rows, d, (b, r))
    ref = deduplicate(keys, sigs, has_words, passed, threshold=d.threshold, verify_jaccard=d.verify_jaccard)
    oracle = datasketch_deduplicate(keys, sigs, has_words, passed, threshold=d.threshold, verify_jaccard=d.verify_jaccard)
    np.testing.assert_array_equal(ref.representative, oracle.representative)
    offsets = np.r_[0, np.cumsum(shard_rows)]
    rep = np.full(n, -1)
    for s, name in enumerate(names):
        for row, (cid, dup, reason) in zip(*columns.get(name, ([], []))):
            i = offsets[s] + row
            rep[i] = int(cid[1:])
            assert (dup is None) == (rep[i] == i)
            assert reason is None or reason.split(":")[0] == ("exact_duplicate" if ref.exact_dup[i] and keys[i] == keys[rep[i]] else "near_duplicate")
    np.testing.assert_array_equal(rep, ref.representative)
    assert clusters == len(np.unique(ref.cluster[ref.cluster >= 0])) > 50
    # a second run finds every shuffle file in place and runs no task again: the same answer
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "shuffle-3").iterdir()}
    assert dedup(ex, str(tmp_path), names, shard_rows, d, (b, r)) == (columns, clusters)
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "shuffle-3").iterdir()} == before
