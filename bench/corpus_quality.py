"""Issue #15: does the main job make a corpus a 3-year-old could read?

Runs the main job's generate + annotate stages on N stories of a recipe (default the demo recipe) twice
in the same run: with its decoding constraints (`[sampling] vocab_bias`, `required_bias`, `sentence_bias`) and with them
off (today's sampler, the baseline). Shards of the two runs alternate, so load from other processes
falls on both alike, and one model instance serves both. Prints the figures side by side and ends with
one JSON line:

    {"kept_frac": ..., "required_all_frac": ..., "oov_mean": ..., "grade_mean": ..., "tokens_per_s_ratio": ...,
     "tokens_per_s": ..., "count": N, "baseline": {"kept_frac": ..., ..., "tokens_per_s": ...}}

Targets at N = 200 on the embedded model: kept >= 0.70, required_all >= 0.60, oov_mean <= 0.05,
grade_mean <= 4, tokens_per_s_ratio >= 0.8.

    python bench/corpus_quality.py --count 200 [--recipe prompts/recipes/demo.toml] [--out bench/.out/cq]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import prompts  # noqa: E402
from corpora import Corpus  # noqa: E402
from generators.config import DECODING_BIASES  # noqa: E402
from generators.postprocess import postprocessor  # noqa: E402
from generators.registry import make_backend  # noqa: E402
from generators.templates import load_template  # noqa: E402
from tinyschool.executors import make_executor  # noqa: E402
from tinyschool.quality import FIGURES, corpus_quality  # noqa: E402
from tinyschool.recipe import load_recipe  # noqa: E402
from tinyschool.stages.annotate import run_annotate  # noqa: E402
from tinyschool.stages.generate import run_generation  # noqa: E402
from tinyschool.ui import console, print_table, progress_bar  # noqa: E402


class TimedBackend:
    """One backend for both runs: generation time and output tokens are counted per run; `close` is
    deferred to the end of the bench (the model is loaded once)."""

    def __init__(self, inner):
        self.inner = inner
        self.name, self.model, self.api = inner.name, inner.model, getattr(inner, "api", "chat")
        self.batch_size = getattr(inner, "batch_size", 16)
        self.seconds = 0.0
        self.tokens = 0

    def generate(self, requests, progress=None, on_result=None):
        t0 = time.perf_counter()
        out = self.inner.generate(requests, progress=progress, on_result=on_result)
        self.seconds += time.perf_counter() - t0
        self.tokens += sum(c.completion_tokens for c in out if c.ok)
        return out

    def close(self) -> None:
        pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--recipe", default=str(REPO / "prompts" / "recipes" / "demo.toml"))
    ap.add_argument("--out", default=str(REPO / "bench" / ".out" / "corpus_quality"))
    ap.add_argument("--resume", action="store_true", help="keep what an earlier run of the same count generated")
    ap.add_argument("--workers", type=int, default=1, help="annotate worker processes")
    args = ap.parse_args()

    recipe = load_recipe(args.recipe, {"count": args.count})
    s = recipe.sampling
    if not s.biases_on():
        console.print(f"{args.recipe}: \\[sampling] {', '.join(DECODING_BIASES)} are 0: nothing to compare")
        return 2
    out = Path(args.out)
    if out.exists() and not args.resume:
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    variants = {
        "constrained": recipe.model_copy(update={"cache": str(out / "requests.sqlite")}),
        "baseline": recipe.model_copy(update={"cache": str(out / "requests.sqlite"),
                                              "sampling": s.model_copy(update=dict.fromkeys(DECODING_BIASES, 0.0))}),
    }
    corpora = {k: Corpus(out / k) for k in variants}
    b = recipe.backend
    inner = make_backend(b.name, **b.options())
    timed = {k: TimedBackend(inner) for k in variants}
    post = postprocessor(load_template(recipe.template).kind)
    shard = recipe.shard_size
    console.print(f"corpus_quality: {args.count} stories per variant from {args.recipe} "
                  f"(vocab_bias {s.vocab_bias}, required_bias {s.required_bias}, sentence_bias {s.sentence_bias} after {s.sentence_words} words, echo_bias {s.echo_bias}; baseline: all 0), shards of {shard}, alternating")
    # warm-up, not timed: the model's loading and first batch, and the constraint's token tables
    warm = variants["constrained"].model_copy(update={"count": 1, "sampling": s.model_copy(update={"max_tokens": 8})})
    run_generation(Corpus(out / "warmup"), warm.name, warm, backend_factory=lambda: inner, recipe_dict=warm.model_dump(mode="json"),
                   postprocess=post)
    t0 = time.time()
    with progress_bar() as progress:
        task = progress.add_task("generate (both variants)", total=2 * args.count)
        for r, upto in enumerate(range(shard, args.count + shard, shard)):
            n = min(upto, args.count)
            for k, cfg in (list(variants.items()) if r % 2 == 0 else list(variants.items())[::-1]):  # who goes first alternates
                cfg_n = cfg.model_copy(update={"count": n})
                st = run_generation(corpora[k], cfg.name, cfg_n, backend_factory=lambda k=k: timed[k],
                                    recipe_dict=cfg_n.model_dump(mode="json"), postprocess=post)
                progress.advance(task, st.requests + st.cache_hits)
    inner.close()
    gen_s = time.time() - t0
    vocab = prompts.resolve("vocab", recipe.vocabulary, ".tsv") if recipe.vocabulary else None
    results = {}
    for k, cfg in variants.items():
        run_annotate(corpora[k], cfg.filters, vocab, make_executor(workers=args.workers), report_dir=out / k / "reports")
        q = corpus_quality(corpora[k])
        t = timed[k]
        q["tokens_per_s"] = round(t.tokens / t.seconds, 2) if t.seconds else None
        q["output_tokens"] = t.tokens
        q["generate_s"] = round(t.seconds, 1)
        results[k] = q
    c, base = results["constrained"], results["baseline"]

    def fmt(k, v):
        if v is None:
            return "-"
        return f"{100 * v:.1f}%" if k in ("kept_frac", "required_all_frac", "oov_mean") else f"{v:.2f}"

    targets = {"kept_frac": ">= 70%", "required_all_frac": ">= 60%", "oov_mean": "<= 5%", "grade_mean": "<= 4",
               "tokens_per_s": "ratio >= 0.8"}
    print_table(f"corpus quality, {args.count} stories each ({gen_s:.0f} s of generation in all)",
                ["figure", "constrained", "baseline (constraints off)", "target"],
                [(k, fmt(k, c.get(k)), fmt(k, base.get(k)), targets.get(k, "")) for k in (*FIGURES, "tokens_per_s")]
                + [("kept / docs", f"{c['kept']}/{c['docs']}", f"{base['kept']}/{base['docs']}", "")])
    ratio = round(c["tokens_per_s"] / base["tokens_per_s"], 3) if c.get("tokens_per_s") and base.get("tokens_per_s") else None
    line = {k: (round(c[k], 4) if c.get(k) is not None else None) for k in FIGURES}
    line.update(tokens_per_s_ratio=ratio, tokens_per_s=c.get("tokens_per_s"), count=args.count,
                baseline={**{k: (round(base[k], 4) if base.get(k) is not None else None) for k in FIGURES},
                          "tokens_per_s": base.get("tokens_per_s")})
    print(json.dumps(line, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
