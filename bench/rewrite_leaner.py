"""Issue 18.3: does `rewrite` with the embedded model make text leaner? 50 high-school-level documents
written for this (tests/data/highschool50.jsonl) are imported, rewritten by SmolLM2-135M-Instruct on
the CPU (`tinyschool transform`), and each document's OOV rate and Flesch-Kincaid grade after are
compared with its own before (the reference, measured in the same run) by paired tests (Wilcoxon
signed-rank and paired t). content_overlap is reported against the README's bound.

    python bench/rewrite_leaner.py [--work bench_out/rewrite_leaner] [--max-tokens 96] [--rounds 2] [--limit 50]

Resumable: the request cache lives in the work folder, so a killed run picks up where it stopped.
Ends with one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, also without an install
from corpora import Corpus

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "tests" / "data" / "highschool50.jsonl"
OVERLAP_BOUND = 0.25  # the documented bound (README, "Leaner text")


def run(cmd: list[str], env: dict[str, str]) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="bench_out/rewrite_leaner")
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--limit", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--analyze-only", action="store_true", help="only the statistics over the shards written so far (a partial run)")
    args = ap.parse_args()
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TINYSCHOOL_REQUEST_CACHE": str(work / "requests.sqlite"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    py = [sys.executable, "-m", "tinyschool"]
    src = work / "source"
    if not Corpus(src).exists():
        run(py + ["import", str(DOCS), "--out", str(src), "--id-field", "id"], env)
    recipe = work / "rewrite.toml"
    if not args.analyze_only:
        recipe.write_text(f"""name = "leaner-bench"
out = "{work / 'leaner'}"
vocabulary = "default"
seed = 7
shard_size = 10
[source]
corpus = "{src}"
stage = "raw"
limit = {args.limit}
[transform]
name = "rewrite"
params = {{ max_rounds = {args.rounds}, max_oov_rate = 0.05 }}
[sampling]
temperature = 0.2
top_p = 0.9
max_tokens = {args.max_tokens}
repetition_penalty = 1.1
[backend]
name = "local"
batch_size = {args.batch_size}
""")
    if not args.analyze_only:
        run(py + ["transform", str(recipe)], env)
    t = Corpus(work / "leaner").read_stage("raw").to_pylist()
    ok = [r for r in t if r["error"] is None]
    ob = np.array([r["oov_before"] for r in ok], float)
    oa = np.array([r["oov_after"] for r in ok], float)
    gb = np.array([r["grade_before"] for r in ok], float)
    ga = np.array([r["grade_after"] for r in ok], float)
    co = np.array([np.nan if r["content_overlap"] is None else r["content_overlap"] for r in ok], float)
    lr = np.array([r["length_ratio"] for r in ok], float)
    w_oov = stats.wilcoxon(ob, oa, alternative="greater")
    w_grade = stats.wilcoxon(gb, ga, alternative="greater")
    t_oov = stats.ttest_rel(ob, oa, alternative="greater")
    t_grade = stats.ttest_rel(gb, ga, alternative="greater")
    print(f"documents rewritten: {len(ok)} of {len(t)}; asks per document: "
          f"{dict(sorted({n: sum(r['n_rounds'] == n for r in ok) for n in {r['n_rounds'] for r in ok}}.items()))}")
    print(f"{'':16}{'before (source)':>18}{'after (rewrite)':>18}{'Wilcoxon p':>12}{'paired t p':>12}")
    print(f"{'mean OOV rate':16}{ob.mean():18.4f}{oa.mean():18.4f}{w_oov.pvalue:12.2e}{t_oov.pvalue:12.2e}")
    print(f"{'mean FK grade':16}{gb.mean():18.2f}{ga.mean():18.2f}{w_grade.pvalue:12.2e}{t_grade.pvalue:12.2e}")
    print(f"content_overlap: mean {np.nanmean(co):.3f}, median {np.nanmedian(co):.3f}, "
          f"{np.mean(co > OVERLAP_BOUND):.0%} of documents above the bound {OVERLAP_BOUND}; length_ratio mean {lr.mean():.2f}")
    print(json.dumps({
        "documents": len(ok), "planned": args.limit, "oov_before": round(float(ob.mean()), 4), "oov_after": round(float(oa.mean()), 4),
        "grade_before": round(float(gb.mean()), 2), "grade_after": round(float(ga.mean()), 2),
        "p_oov_wilcoxon": float(w_oov.pvalue), "p_grade_wilcoxon": float(w_grade.pvalue),
        "p_oov_ttest": float(t_oov.pvalue), "p_grade_ttest": float(t_grade.pvalue),
        "content_overlap": round(float(np.nanmean(co)), 3), "content_overlap_bound": OVERLAP_BOUND,
        "share_above_bound": round(float(np.mean(co > OVERLAP_BOUND)), 3), "length_ratio": round(float(lr.mean()), 3),
    }))


if __name__ == "__main__":
    main()
