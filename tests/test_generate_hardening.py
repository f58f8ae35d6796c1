"""Issue 13.1-13.2 with the real test server: odd text from a server loses nothing (lone surrogates
become U+FFFD, counted), and answers are cached as they arrive (a SIGKILL mid-chunk loses none of
the answers already received)."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import REPO, run_cli
from corpora import Corpus
from generators.base import Completion
from generators.cache import CacheWriter, RequestCache
from openai_server import server_fixture

server = server_fixture()


def recipe(tmp_path, server, count, shard_size, concurrency=4, timeout_s=5):
    out = tmp_path / "corpus"
    p = tmp_path / "remote.toml"
    p.write_text(f'''
name = "remote"
template = "tinystories"
count = {count}
seed = 3
shard_size = {shard_size}
out = "{out}"

[sampling]
max_tokens = 12

[backend]
name = "openai"
model = "tiny-test"
base_url = "{server.url}"
concurrency = {concurrency}
max_retries = 0
timeout_s = {timeout_s}
''')
    return p, Corpus(out)


def table(stdout):
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("│┃|").split("│") if c.strip()]
        if len(cells) == 2:
            rows[cells[0]] = cells[1]
    return rows


def test_lone_surrogates_from_a_server_lose_nothing(server, tmp_path):
    rec, corpus = recipe(tmp_path, server, count=8, shard_size=4)
    server.reset(faults=[{"fault": "surrogates", "times": 5}])
    res = run_cli("generate", rec, env={"COLUMNS": "200"})
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    assert table(res.stdout)["lone surrogates -> U+FFFD"] == "10"  # 5 answers x 2
    rows = [r for _, t in corpus.iter_stage("raw") for r in t.to_pylist()]
    assert len(rows) == 8 and all(r["error"] is None for r in rows)  # every row stored, none failed
    odd = [r for r in rows if "\ufffd" in r["text"]]
    assert len(odd) == 5 and all("\ufffd\ufffd" in r["text"] for r in odd)
    assert all(json.loads(r["meta"]) == {"replaced_surrogates": 2} for r in odd)
    assert corpus.verify() == [] and corpus.is_complete("raw")
    # the cache holds them too, as valid UTF-8: a re-run elsewhere is answered from it
    db = sqlite3.connect(os.environ["TINYSCHOOL_REQUEST_CACHE"])
    values = [json.loads(v) for (v,) in db.execute("SELECT value FROM completions")]
    db.close()
    assert len(values) == 8 and sum("\ufffd" in v["text"] for v in values) == 5
    server.reset(faults=[{"fault": "surrogates"}])
    res = run_cli("generate", rec, "--out", tmp_path / "again", env={"COLUMNS": "200"})
    assert res.returncode == 0 and server.stats()["requests"] == 0, res.stderr
    assert table(res.stdout)["cache hits"] == "8"


def _cached(path):
    try:
        db = sqlite3.connect(path, timeout=5)
        try:
            return db.execute("SELECT count(*) FROM completions").fetchone()[0]
        finally:
            db.close()
    except sqlite3.OperationalError:  # not created yet
        return 0


@pytest.mark.slow
def test_sigkill_mid_chunk_keeps_the_answers_already_received(server, tmp_path):
    # one shard of 24; concurrency 4 gives chunks of 16. The first request hangs, so the first chunk
    # cannot finish: its other 15 answers arrive, and before this change none of them reached the cache
    rec, corpus = recipe(tmp_path, server, count=24, shard_size=24, concurrency=4, timeout_s=600)
    server.reset(faults=[{"fault": "hang", "times": 1, "seconds": 600}])
    cache_path = os.environ["TINYSCHOOL_REQUEST_CACHE"]
    proc = subprocess.Popen([sys.executable, "-m", "tinyschool", "generate", str(rec)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300  # a guard against hanging forever, not a speed check
        while _cached(cache_path) < 15:
            assert proc.poll() is None, "the run ended before it was killed"
            assert time.monotonic() < deadline, f"only {_cached(cache_path)} answers reached the cache"
            time.sleep(0.2)
        stats = server.stats()
        assert stats["requests"] == 16  # one chunk sent, one answer still outstanding: mid-chunk
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not corpus.shard_names("raw")  # nothing written yet: the kill came mid-chunk
    cached = _cached(cache_path)
    assert cached == 15

    server.reset()
    res = run_cli("generate", rec, env={"COLUMNS": "200"})
    assert res.returncode == 0, res.stderr
    t = table(res.stdout)
    assert t["cache hits"] == "15" and t["requests sent"] == "9"
    assert server.stats()["requests"] == 9  # the hung one and the 8 never sent
    assert corpus.count("raw") == 24 and corpus.is_complete("raw")


class _Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_cache_writer_commits_within_its_interval(tmp_path):
    cache = RequestCache(tmp_path / "c.sqlite")
    clock = _Clock()
    w = CacheWriter(cache, interval_s=1.0, clock=clock)
    w.add("a", Completion(id="a", text="first"))  # the first answer goes at once
    assert len(cache) == 1 and w.commits == 1
    clock.t = 0.5
    w.add("b", Completion(id="b", text="second"))  # within the interval: waits (a timer commits it)
    w.add("bad", Completion(id="bad", error="x", error_kind="server"))  # failures are never cached
    clock.t = 1.2
    w.add("c", Completion(id="c", text="third"))  # the interval passed: b and c go together
    assert len(cache) == 3 and w.commits == 2
    w.close()
    assert sorted(cache.get_many(["a", "b", "c", "bad"])) == ["a", "b", "c"]
    cache.close()


def test_cache_writer_timer_commits_without_another_answer(tmp_path):
    cache = RequestCache(tmp_path / "c.sqlite")
    w = CacheWriter(cache, interval_s=0.05)
    w.add("a", Completion(id="a", text="first"))
    w.add("b", Completion(id="b", text="second"))  # no answer follows: the timer commits it
    for _ in range(200):
        if len(cache) == 2:
            break
        time.sleep(0.05)
    assert len(cache) == 2
    w.close()
    cache.close()


def test_cache_never_fails_on_surrogates(tmp_path):
    cache = RequestCache(tmp_path / "c.sqlite")
    cache.put_many([("k", Completion(id="k", text="odd \udcff\ud800 text"))])
    assert cache.get_many(["k"])["k"].text == "odd \ufffd\ufffd text"
    cache.close()
