"""The cleaning stage on Ray (a local 2-worker cluster started here): the same bytes as the local
run, and a worker killed mid-task is retried with the corpus complete and without duplicates."""
from __future__ import annotations

import random
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

ray = pytest.importorskip("ray")

import prompts  # noqa: E402
from corpora import Corpus, raw_table  # noqa: E402
from filters.config import FilterConfig  # noqa: E402
import faults  # noqa: E402
from faults import KillingExecutor  # noqa: E402
from tinyschool.executors import ExecutorConfig, ExecutorError, make_executor  # noqa: E402
from tinyschool.executors.ray_executor import RayExecutor  # noqa: E402
from tinyschool.stages.annotate import run_annotate  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]  # one Ray cluster at a time: the group runs on one test worker

WORDS = ("cat dog sun tree ball red happy little girl boy park ran jumped played saw big small mom dad friend "
         "bird fish water home went found smiled laughed day night star moon box toy car book sang").split()


def _story(rng: random.Random, n: int) -> str:
    sents = []
    for _ in range(n):
        w = [rng.choice(WORDS) for _ in range(rng.randint(5, 9))]
        sents.append("The " + " ".join(w) + " and the " + rng.choice(WORDS) + ".")  # stop words: prose to Gopher's rules
    return " ".join(sents)


def _near_copy(rng: random.Random, text: str) -> str:
    words = text.split(" ")
    i = rng.randrange(len(words) - 1)
    words[i] = rng.choice(WORDS)  # one word changed: Jaccard of 5-word shingles stays high
    return " ".join(words)


def _rec(i: int, text: str) -> dict:
    return {"id": f"doc{i:04d}", "text": text, "prompt": "Write a story.", "template": "synthetic", "slots": {},
            "backend": "synthetic", "model": "none", "finish_reason": "stop", "error": None, "sample_index": i,
            "recipe": "ray-test"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    ray.cloudpickle.register_pickle_by_value(faults)  # the workers get the test's wrapper with the task
    ray.init(num_cpus=2, object_store_memory=200 * 2**20, include_dashboard=False, log_to_driver=False)
    yield folder
    ray.shutdown()


@pytest.fixture(scope="module")
def raw_corpus(tmp_path_factory):
    """Three raw shards with exact and near duplicates inside and across shards, an empty text and an error row."""
    rng = random.Random(7)
    texts = [_story(rng, rng.randint(10, 14)) for _ in range(60)]
    texts[10] = texts[3]  # exact, same shard
    texts[45] = texts[4].upper()  # exact after normalization, across shards
    texts[30] = _near_copy(rng, texts[5])  # near, across shards
    texts[55] = _near_copy(rng, texts[30])  # a chain: 5 ~ 30 ~ 55
    texts[25] = _near_copy(rng, texts[21])
    texts[50] = texts[21]  # an exact copy of a near duplicate's partner
    texts[40] = ""
    root = tmp_path_factory.mktemp("raw") / "corpus"
    c = Corpus(root).init("ray-test")
    recs = [_rec(i, t) for i, t in enumerate(texts)]
    recs[41]["error"], recs[41]["text"], recs[41]["finish_reason"] = "boom", "", "error"
    for k, (a, b) in enumerate([(0, 20), (20, 40), (40, 60)]):
        c.write_shard("raw", f"part-{k:05d}", raw_table(recs[a:b]))
    c.mark_complete("raw")
    return root


def _copy(src: Path, dst: Path) -> Corpus:
    shutil.copytree(src, dst)
    return Corpus(dst)


def _shard_bytes(c: Corpus) -> dict[str, bytes]:
    return {f"{s}/{n}": c.shard_path(s, n).read_bytes() for s in ("annotated", "clean") for n in c.shard_names(s)}


VOCAB = prompts.resolve("vocab", "default", ".tsv")


@pytest.fixture(scope="module")
def local_run(raw_corpus, tmp_path_factory):
    c = _copy(raw_corpus, tmp_path_factory.mktemp("local") / "corpus")
    stats = run_annotate(c, FilterConfig(), VOCAB, make_executor(workers=1))
    return c, stats


def test_ray_annotate_is_byte_identical_to_local_with_killed_workers(cluster, raw_corpus, local_run, tmp_path):
    local, lstats = local_run
    assert lstats.exact_duplicates >= 3 and lstats.near_duplicates >= 3  # the planted duplicates were found
    # three tasks of the run are SIGKILLed once each, after doing their work, before reporting it
    tags = ("annotate_shard_part-00001", "band_bucket_1", "write_shard_part-00002")
    for tag in tags:
        (cluster / tag).write_text("")
    c = _copy(raw_corpus, tmp_path / "corpus")
    ex = KillingExecutor(RayExecutor(ExecutorConfig(kind="ray", num_workers=2, partitions=3, max_retries=2)), cluster)
    stats = run_annotate(c, FilterConfig(), VOCAB, ex)
    for tag in tags:
        assert not (cluster / tag).exists() and (cluster / f"{tag}.killed").exists(), tag  # each was killed once
    assert (stats.docs, stats.kept, stats.clusters) == (lstats.docs, lstats.kept, lstats.clusters)
    assert set(stats.phase_seconds) == set(lstats.phase_seconds)
    assert dict(stats.dropped) == dict(lstats.dropped)
    ours, ref = _shard_bytes(c), _shard_bytes(local)
    assert len(ref) == 6 and ours.keys() == ref.keys()
    for k in ref:
        assert ours[k] == ref[k], k
    assert c.manifest()["stages"]["annotated"]["info"] == local.manifest()["stages"]["annotated"]["info"]
    assert c.is_complete("annotated") and c.is_complete("clean")
    assert not (c.root / ".annotate").exists()
    # a cross-shard near duplicate and its chain point at the first document
    dup = {r["id"]: r["duplicate_of"] for r in pq.read_table(c.shard_path("annotated", "part-00002")).to_pylist()}
    assert dup["doc0055"] == "doc0005" and dup["doc0045"] == "doc0004"
    ids = [i for _, t in c.iter_stage("annotated", columns=["id"]) for i in t.column("id").to_pylist()]
    assert len(ids) == len(set(ids)) == c.count("raw") == 60
    assert c.verify() == []


def test_a_task_that_dies_past_its_retries_is_one_clear_error_then_resumes(cluster, raw_corpus, local_run, tmp_path):
    local, _ = local_run
    (cluster / "annotate_shard_part-00000").write_text("")
    c = _copy(raw_corpus, tmp_path / "corpus")
    raw_before = {n: e["xxh3_128"] for n, e in c.shard_entries("raw").items()}
    with pytest.raises(ExecutorError, match=r"a Ray task failed 1 times \(WorkerCrashedError"):
        run_annotate(c, FilterConfig(), VOCAB, KillingExecutor(RayExecutor(ExecutorConfig(kind="ray", num_workers=2, max_retries=0)), cluster))
    assert {n: e["xxh3_128"] for n, e in c.shard_entries("raw").items()} == raw_before and not c.is_complete("annotated")
    # the re-run resumes (shards already annotated are kept) and ends with the same bytes
    stats = run_annotate(c, FilterConfig(), VOCAB, RayExecutor(ExecutorConfig(kind="ray", num_workers=2)))
    assert stats.shards_annotated < 3
    assert _shard_bytes(c) == _shard_bytes(local)
