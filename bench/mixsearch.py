"""Time a RegMix-style search: N proxies at the tiny preset on three planted domains (the issue's figure:
48 proxies in about 15 minutes on 2 cores).

    python bench/mixsearch.py [--proxies 48] [--tokens 200000] [--workers 2] [--out /tmp/bench-mixsearch]

Prints the search's wall time beside the CPU time its runs used (the machine's load shows as the gap)
and the load average, then one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sys
import time
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corpora import Corpus
from corpora.machine import available_cores
from trainers.config import load_experiment
from tinyschool.stages.ablate import training_executor
from trainers.mixsearch import run_mixsearch

LETTERS = {"a": "abcdefgh", "b": "ijklmnop", "c": "qrstuvwx"}


def planted(root: Path, letters: str, n: int, seed: int) -> None:
    rng = random.Random(f"lexicon:{letters}")
    lexicon = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 5))) for _ in range(200)]
    rng = random.Random(seed)
    rows = [{"id": f"{letters[0]}{seed}-{i:05d}",
             "text": " ".join(lexicon[min(199, int(rng.paretovariate(1.1)) - 1)] for _ in range(rng.randint(40, 200))) + "."}
            for i in range(n)]
    Corpus(root).init("planted").write_shard("clean", "part-00000", pa.Table.from_pylist(rows))


EXP = """
name = "bench-mixsearch"
corpus = "{d}/target"
corpora = {{ a = "{d}/a", b = "{d}/b", c = "{d}/c" }}
out = "{d}/runs"
workers = {workers}
[tokenizer]
vocab_size = 512
[train]
batch_size = 32
eval_every = 100
eval_docs = 64
[samples]
prompts = ["a"]
max_tokens = 8
[[curricula]]
name = "random"
[mixsearch]
target = "main"
domains = ["a", "b", "c"]
proxies = {proxies}
preset = "tiny"
tokens = {tokens}
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--proxies", type=int, default=48)
    ap.add_argument("--tokens", type=int, default=200_000)
    ap.add_argument("--workers", type=int, default=available_cores())
    ap.add_argument("--out", default="/tmp/bench-mixsearch")
    a = ap.parse_args()
    d = Path(a.out)
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    for name, letters in LETTERS.items():
        planted(d / name, letters, 1000, seed=1)
    planted(d / "target", LETTERS["a"], 300, seed=2)
    (d / "exp.toml").write_text(EXP.format(d=d, workers=a.workers, proxies=a.proxies, tokens=a.tokens))
    exp = load_experiment(d / "exp.toml")
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    res = run_mixsearch(exp, training_executor("local"), a.workers, log=print, validate=False)
    wall = time.perf_counter() - t0
    cpu = sum(getattr(resource.getrusage(w), f) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for f in ("ru_utime", "ru_stime"))
    load1 = os.getloadavg()[0]
    print(f"{a.proxies} proxies x {a.tokens:,} tokens (tiny preset), {a.workers} workers on {available_cores()} cores: "
          f"search {wall:.0f} s wall ({wall / 60:.1f} min; issue's target ~15 min), {cpu:.0f} s CPU; "
          f"load average {load0:.1f} at start, {load1:.1f} at end")
    print("regression: " + ", ".join(f"{f.name} rho {f.rho:.3f}" for f in res.fits) +
          f"; winner {dict(zip(res.domains, [round(float(x), 3) for x in res.winner]))}")
    print(json.dumps({"proxies": a.proxies, "tokens_per_proxy": a.tokens, "workers": a.workers, "cores": available_cores(),
                      "search_s": round(wall, 1), "cpu_s": round(cpu, 1), "target_s": 900,
                      "load_avg_start": round(load0, 1), "load_avg_end": round(load1, 1),
                      "rho": {f.name: round(f.rho, 3) for f in res.fits}}))


if __name__ == "__main__":
    main()
