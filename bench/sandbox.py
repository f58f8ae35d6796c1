"""Issue 5.6: solutions verified per second on both cores — the warm sandbox pool beside a bare
`subprocess.run([python, "-c", code])` loop (also on both cores), on the same TinyGSM-style
solutions (GSM8K train answers turned into Python by generators/gsm8k.py). Target: at least 5x.

The reference gives no isolation at all (no limits, inherited environment, network, project on
sys.path); ours runs every solution in its own forked child with the full set of limits.
Verified = returned a finite number equal to the GSM8K answer (both sides are checked the same way).

    python bench/sandbox.py [--solutions 600] [--reference 150] [--workers 2]
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, also without an install

from corpora.machine import available_cores
from filters.sandbox import Limits, SandboxPool, isolation_info, run_solution
from generators.gsm8k import load_examples

GSM8K = "../shared/data/gsm8k/train.jsonl"


def close(a: float | None, b: float) -> bool:
    return a is not None and math.isfinite(a) and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)


def bare_run(code: str) -> float | None:
    """The reference: one fresh interpreter per solution, answer printed on stdout."""
    p = subprocess.run([sys.executable, "-c", code + "\nprint(repr(float(solution())))"],
                       capture_output=True, text=True, timeout=10)
    try:
        return float(p.stdout.strip())
    except ValueError:
        return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--solutions", type=int, default=600, help="solutions through the pool")
    ap.add_argument("--reference", type=int, default=150, help="solutions through the bare subprocess loop")
    ap.add_argument("--workers", type=int, default=available_cores())
    args = ap.parse_args()

    rows = load_examples(GSM8K)
    items = [(r["code"], float(r["answer"].replace(",", ""))) for r in rows]
    ours_items = [items[i % len(items)] for i in range(args.solutions)]
    ref_items = [items[i % len(items)] for i in range(args.reference)]

    # reference: bare subprocess.run loop on every core
    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.workers) as ex:
        ref_vals = list(ex.map(lambda it: bare_run(it[0]), ref_items))
    ref_s = time.perf_counter() - t0
    ref_ok = sum(close(v, it[1]) for v, it in zip(ref_vals, ref_items))

    # ours: warm pool, one forked, limited child per solution (worker start-up included)
    t0 = time.perf_counter()
    with SandboxPool(size=args.workers, limits=Limits()) as pool:
        res = pool.map([c for c, _ in ours_items])
    ours_s = time.perf_counter() - t0
    ours_ok = sum(close(r.number, it[1]) for r, it in zip(res, ours_items))

    # for information: one fresh worker per solution (run_solution), one core
    n_one = 40
    t0 = time.perf_counter()
    one_ok = sum(close(run_solution(c).number, a) for c, a in items[:n_one])
    one_s = time.perf_counter() - t0

    ref_rate, ours_rate = ref_ok / ref_s, ours_ok / ours_s
    print(f"isolation on this host: {isolation_info()}")
    print(f"{'':34} {'solutions':>9} {'verified':>9} {'seconds':>8} {'verified/s':>11}")
    print(f"{'bare subprocess.run loop':34} {len(ref_items):>9} {ref_ok:>9} {ref_s:>8.2f} {ref_rate:>11.1f}")
    print(f"{'sandbox pool (' + str(args.workers) + ' workers)':34} {len(ours_items):>9} {ours_ok:>9} {ours_s:>8.2f} {ours_rate:>11.1f}")
    print(f"{'sandbox one-shot (1 core, info)':34} {n_one:>9} {one_ok:>9} {one_s:>8.2f} {one_ok / one_s:>11.1f}")
    print(json.dumps({"metric": "solutions_verified_per_s", "ours": round(ours_rate, 1), "reference": round(ref_rate, 1),
                      "ratio": round(ours_rate / ref_rate, 1), "target": 5}))


if __name__ == "__main__":
    main()
