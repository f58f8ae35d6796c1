"""Issue 3.2: the request cache. Keyed by what determines the output and nothing else; shared by
recipes that ask the same things; survives a SIGKILL of its writer mid-write."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import REPO
from corpora import Corpus
from generators.base import Completion, Request, Sampling
from generators.cache import RequestCache
from generators.config import BackendConfig, GenerationConfig, SamplingConfig
from generators.registry import make_backend
from tinyschool.stages.generate import run_generation
from openai_server import server_fixture

server = server_fixture()


def config(server, count=6, temperature=0.8, **backend):
    b = dict(name="openai", model="tiny-test", base_url=server.url, concurrency=4, max_retries=1, timeout_s=5)
    b.update(backend)
    return GenerationConfig(template="tinystories", vocabulary="default", count=count, seed=11, shard_size=3,
                            sampling=SamplingConfig(max_tokens=10, temperature=temperature), backend=BackendConfig(**b))


def generate(out, cfg, name="shared"):
    corpus = Corpus(out)
    stats = run_generation(corpus, name, cfg, lambda: make_backend(cfg.backend.name, **cfg.backend.options()))
    return corpus, stats


def texts(corpus):
    return {r["id"]: r["text"] for _, t in corpus.iter_stage("raw", ["id", "text"]) for r in t.to_pylist()}


def test_rerun_and_second_recipe_answer_from_the_cache(server, tmp_path):
    server.reset()
    a, stats = generate(tmp_path / "a", config(server))
    assert server.stats()["requests"] == 6 and stats.cache_hits == 0

    # a second recipe: another output folder, count, concurrency, max_retries, timeout, rate limits
    # -- none of them enters a request, so the 6 shared requests come from the cache
    server.reset()
    b, stats = generate(tmp_path / "b", config(server, count=9, concurrency=2, max_retries=5, timeout_s=9, rpm=6000))
    assert stats.cache_hits == 6 and stats.requests == 3
    log = server.stats()["log"]
    assert len(log) == 3
    # usage counts what this run asked for, not the answers the cache gave back
    assert stats.prompt_tokens == sum(e["prompt_tokens"] for e in log)
    assert stats.completion_tokens == sum(e["completion_tokens"] for e in log)
    tb = texts(b)
    assert {k: tb[k] for k in texts(a)} == texts(a)  # the same answers, the same bytes

    # a parameter that does enter the request (temperature) misses
    server.reset()
    c, stats = generate(tmp_path / "c", config(server, temperature=0.3))
    assert stats.cache_hits == 0 and server.stats()["requests"] == 6


def test_cache_key_covers_the_output_and_nothing_else():
    base = Request(id="a", messages=({"role": "user", "content": "hi"},), sampling=Sampling(seed=1))
    key = base.cache_key("openai", "m", "chat")
    same = Request(id="another-id", messages=base.messages, sampling=Sampling(seed=1))
    assert same.cache_key("openai", "m", "chat") == key  # the item id does not enter
    changed = [
        Request(id="a", messages=base.messages, sampling=Sampling(seed=2)),
        Request(id="a", messages=base.messages, sampling=Sampling(seed=1, top_p=0.5)),
        Request(id="a", messages=({"role": "user", "content": "hi!"},), sampling=Sampling(seed=1)),
        Request(id="a", messages=base.messages, sampling=Sampling(seed=1), prefill="Once"),
        Request(id="a", messages=base.messages, sampling=Sampling(seed=1), json_schema={"type": "object"}),
    ]
    keys = {r.cache_key("openai", "m", "chat") for r in changed} | {base.cache_key("openai", "m2", "chat"),
                                                                     base.cache_key("openai", "m", "completions")}
    assert key not in keys and len(keys) == len(changed) + 2


WRITER = """
import sys
from generators.base import Completion
from generators.cache import RequestCache
cache = RequestCache(sys.argv[1])
start, batch = int(sys.argv[2]), int(sys.argv[3])
print("ready", flush=True)
i = start
while True:
    cache.put_many((f"k{j}", Completion(id=f"k{j}", text="x" * 2000 + str(j), completion_tokens=j))
                   for j in range(i, i + batch))
    i += batch
"""

BATCH = 200


@pytest.mark.slow
def test_cache_survives_sigkill_mid_write(tmp_path):
    path = tmp_path / "cache.sqlite"
    start = 0
    for round_ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(start), str(BATCH)], cwd=REPO,
                                stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
        assert proc.stdout.readline().strip() == "ready"
        # let it write for a while (it commits batch after batch, so the kill lands inside one)
        deadline = time.time() + 30
        while time.time() < deadline:
            time.sleep(0.05 + 0.07 * round_)
            with sqlite3.connect(path, timeout=30) as db:
                if db.execute("SELECT COUNT(*) FROM completions").fetchone()[0] >= start + 3 * BATCH:
                    break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()

        cache = RequestCache(path)
        assert cache._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        n = len(cache)
        assert n >= start + 3 * BATCH and n % BATCH == 0  # whole transactions only, none torn
        got = cache.get_many(f"k{j}" for j in range(n))
        assert len(got) == n
        assert all(c.text == "x" * 2000 + str(j) and c.completion_tokens == j
                   for j, c in ((int(k[1:]), c) for k, c in got.items()))
        # and it is writable again
        cache.put_many([("after", Completion(id="after", text="ok"))])
        assert cache.get_many(["after"])["after"].text == "ok"
        cache._db.execute("DELETE FROM completions WHERE key = 'after'")
        cache.close()
        start = n


def test_only_successes_are_cached(tmp_path):
    cache = RequestCache(tmp_path / "c.sqlite")
    cache.put_many([("good", Completion(id="g", text="fine")),
                    ("bad", Completion(id="b", error="HTTP 500", error_kind="server", finish_reason="error"))])
    assert set(cache.get_many(["good", "bad"])) == {"good"}
    assert json.loads(cache.get_many(["good"])["good"].to_json())["text"] == "fine"
    cache.close()
