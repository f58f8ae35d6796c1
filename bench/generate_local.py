"""Issue 2.5: tokens/s of the local backend's batched sampler beside a one-prompt-at-a-time
`model.generate` loop on the same prompts, model and sampling settings (target: at least 2x).

    python bench/generate_local.py [--prompts 16] [--max-tokens 64] [--batch-size 16]
"""
from __future__ import annotations

import argparse
import json
import time

import torch

import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, also without an install

from generators.base import Request, Sampling
from generators.config import GenerationConfig
from generators.local import LocalBackend
from generators.runner import build_plan, to_request
from generators.templates import load_template


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()

    cfg = GenerationConfig(count=args.prompts, seed=0)
    cfg.sampling.max_tokens = args.max_tokens
    t = load_template(cfg.template)
    reqs = [to_request(it, t, cfg) for it in build_plan(cfg, "bench", t)]
    # both sides generate exactly max_tokens per prompt (no early stop) so the work is equal
    reqs = [Request(id=r.id, messages=r.messages, prefill=r.prefill,
                    sampling=Sampling(temperature=r.sampling.temperature, top_p=r.sampling.top_p,
                                      max_tokens=args.max_tokens, seed=r.sampling.seed,
                                      repetition_penalty=r.sampling.repetition_penalty)) for r in reqs]
    backend = LocalBackend(batch_size=args.batch_size)
    lm, tok = backend._ensure()
    backend._stop_ids = set()  # no early stop: equal token counts on both sides

    t0 = time.perf_counter()
    out = backend.generate(reqs)
    ours_s = time.perf_counter() - t0
    ours_tokens = sum(c.completion_tokens for c in out)

    t0 = time.perf_counter()
    ref_tokens = 0
    with torch.inference_mode():
        for r in reqs:
            ids = tok(backend.render(r), return_tensors="pt", add_special_tokens=False)["input_ids"]
            torch.manual_seed(r.sampling.seed)
            g = lm.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True,
                            temperature=r.sampling.temperature, top_p=r.sampling.top_p,
                            repetition_penalty=r.sampling.repetition_penalty, max_new_tokens=args.max_tokens,
                            min_new_tokens=args.max_tokens, pad_token_id=tok.eos_token_id)
            ref_tokens += g.shape[1] - ids.shape[1]
    ref_s = time.perf_counter() - t0

    ours = ours_tokens / ours_s
    ref = ref_tokens / ref_s
    print(f"local backend (batch {args.batch_size}): {ours_tokens} tokens in {ours_s:.1f} s = {ours:.1f} tokens/s")
    print(f"model.generate one prompt at a time: {ref_tokens} tokens in {ref_s:.1f} s = {ref:.1f} tokens/s")
    print(json.dumps({"metric": "tokens_per_s", "ours": round(ours, 1), "reference": round(ref, 1),
                      "ratio": round(ours / ref, 2), "target": 2}))


if __name__ == "__main__":
    main()
