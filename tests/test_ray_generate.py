"""Generation on Ray (a local 2-worker cluster started here) with the embedded model: the same
documents as a local run, a killed worker retried, the recipe's [executor] table, clear errors."""
from __future__ import annotations

import sys

import pyarrow.parquet as pq
import pytest

ray = pytest.importorskip("ray")

from corpora import Corpus  # noqa: E402
from generators.postprocess import postprocessor  # noqa: E402
from generators.registry import make_backend  # noqa: E402
from generators.templates import load_template  # noqa: E402
import faults  # noqa: E402
from faults import KillingExecutor  # noqa: E402
from tinyschool.executors import ExecutorConfig, ExecutorError, make_executor  # noqa: E402
from tinyschool.recipe import Recipe, RecipeError, load_recipe  # noqa: E402
from tinyschool.stages.generate import run_generation  # noqa: E402

pytestmark = pytest.mark.xdist_group("ray")  # one Ray cluster at a time: the group runs on one test worker

WALL_CLOCK = {"created_at", "latency_s"}  # when the answer arrived and how long it took: never equal between two runs


@pytest.mark.parametrize("address", ["127.0.0.1:1", "ray://127.0.0.1:1"])
def test_unreachable_cluster_is_one_clear_error(address):
    assert not ray.is_initialized()  # runs before the module's cluster is started
    ex = make_executor(ExecutorConfig(kind="ray", address=address))
    with pytest.raises(ExecutorError, match=rf"cannot start or reach Ray at {address}: "):
        with ex.session():
            pass


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    ray.cloudpickle.register_pickle_by_value(faults)  # the workers get the test's wrapper with the task
    ray.init(num_cpus=2, object_store_memory=200 * 2**20, include_dashboard=False, log_to_driver=False)
    yield folder
    ray.shutdown()


def _recipe(cache) -> Recipe:
    return Recipe(name="ray-gen", count=6, shard_size=3, seed=3, cache=str(cache),
                  sampling={"max_tokens": 8}, backend={"batch_size": 4, "threads": 1},
                  executor={"kind": "ray", "num_workers": 2})


class _Shared:
    """The driver's one embedded model, used by both local runs below (loading it is the slow part);
    `close` is left to the end of the test."""

    def __init__(self, backend):
        self.backend = backend

    def __getattr__(self, name):
        return getattr(self.backend, name)

    def close(self):
        pass


def _generate(executor, recipe: Recipe, root, factory=None) -> Corpus:
    corpus = Corpus(root)
    run_generation(corpus, recipe.name, recipe,
                   backend_factory=factory or (lambda: make_backend(recipe.backend.name, **recipe.backend.options())),
                   recipe_dict=recipe.model_dump(mode="json"),
                   postprocess=postprocessor(load_template(recipe.template).kind), executor=executor)
    return corpus


@pytest.mark.slow
def test_ray_generation_matches_local_and_survives_a_killed_worker(cluster, tmp_path):
    (cluster / "generate_task_part-00001").write_text("")
    r = _recipe(tmp_path / "ray-cache.sqlite")
    ray_c = _generate(KillingExecutor(make_executor(r.executor), cluster), r, tmp_path / "ray")
    assert not (cluster / "generate_task_part-00001").exists() and (cluster / "generate_task_part-00001.killed").exists()
    assert ray_c.is_complete("raw") and ray_c.shard_names("raw") == ["part-00000", "part-00001"]
    assert ray_c.verify() == []
    ray_rows = [row for _, t in ray_c.iter_stage("raw") for row in t.to_pylist()]
    assert len(ray_rows) == len({x["id"] for x in ray_rows}) == 6
    assert all(x["error"] is None and x["completion_tokens"] > 0 for x in ray_rows)

    # a local run with its own cache: the same model answers, so every column but the clock matches
    local = _recipe(tmp_path / "local-cache.sqlite")
    shared = _Shared(make_backend(local.backend.name, **local.backend.options()))
    local_c = _generate(make_executor(ExecutorConfig()), local, tmp_path / "local", factory=lambda: shared)
    local_rows = [row for _, t in local_c.iter_stage("raw") for row in t.to_pylist()]
    strip = lambda rows: [{k: v for k, v in x.items() if k not in WALL_CLOCK} for x in rows]  # noqa: E731
    assert strip(ray_rows) == strip(local_rows)

    # a local run answered from the Ray run's cache writes byte-identical shards
    again = _recipe(tmp_path / "ray-cache.sqlite")
    stats = run_generation(Corpus(tmp_path / "again"), again.name, again,
                           backend_factory=lambda: shared,
                           recipe_dict=again.model_dump(mode="json"), postprocess=postprocessor(load_template(again.template).kind))
    assert stats.cache_hits == 6 and stats.requests == 0
    for n in ray_c.shard_names("raw"):
        assert Corpus(tmp_path / "again").shard_path("raw", n).read_bytes() == ray_c.shard_path("raw", n).read_bytes()
    shared.backend.close()

    # a re-run on Ray has nothing to do
    again_ray = _generate(make_executor(r.executor), r, tmp_path / "ray")
    assert {n: e["xxh3_128"] for n, e in again_ray.shard_entries("raw").items()} == \
        {n: e["xxh3_128"] for n, e in ray_c.shard_entries("raw").items()}
    assert pq.read_table(ray_c.shard_path("raw", "part-00000")).num_rows == 3


def test_executor_table_in_a_recipe(tmp_path):
    p = tmp_path / "r.toml"
    p.write_text('name = "x"\n[executor]\nkind = "ray"\naddress = "auto"\nnum_workers = 8\nnum_gpus = 1\n')
    e = load_recipe(p).executor
    assert (e.kind, e.address, e.num_workers, e.num_gpus) == ("ray", "auto", 8, 1)
    assert load_recipe(tmp_path / "r.toml").executor.max_retries == 3
    p.write_text('name = "x"\n[executor]\nkind = "spark"\n')
    with pytest.raises(RecipeError, match=r"r.toml: executor.kind: "):
        load_recipe(p)
    p.write_text('name = "x"\n[executor]\nworkers = 2\n')
    with pytest.raises(RecipeError, match=r"executor.workers: unknown key"):
        load_recipe(p)
    (tmp_path / "d.toml").write_text('name = "d"\n')
    assert load_recipe(tmp_path / "d.toml").executor.kind == "local"


def test_ray_missing_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    with pytest.raises(ExecutorError, match=r"pip install 'tinyschool\[ray\]'"):
        make_executor(ExecutorConfig(kind="ray"))
