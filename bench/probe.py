"""Speed and agreement of the minimal-pair probe.

1. The embedded SmolLM2-135M on BLiMP paradigms, scored through `trainers.probe` (what `tinyschool
   probe` runs: every distinct sentence once, batches of similar lengths, the output layer only at
   real positions) and through a plain batched transformers loop over the same pairs (pairs in
   file order, good and bad sentences padded together, full logits, log_softmax, gather). Both
   must give the same accuracy per paradigm; the rates are pairs per second of scoring (model
   loading excluded). The two are measured in alternating rounds and the best round of each kept.
2. All BLiMP pairs (or --pairs-7m of them) on the 7M preset (dim 288, 6 layers, vocabulary 4,096
   from a BPE trained on GSM8K text), through the same probe path: the seconds it takes.

Ends with one JSON line: ours, reference (pairs/s), ratio, and the 7M figures.

    python bench/probe.py [--per-paradigm 200] [--rounds 2] [--threads 2] [--pairs-7m 67000]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from generators.local import cache_root, find_gguf, load_model  # noqa: E402
from trainers.model import Transformer, preset  # noqa: E402
from trainers.probe import model_lm, load_hf_lm, score_suite, summarize, probe  # noqa: E402
from trainers.probe_report import default_data  # noqa: E402
from trainers.probe_suites import Suite, load_suite  # noqa: E402
from trainers.tokenizer import eot_id, train_tokenizer  # noqa: E402

PARADIGMS = ["anaphor_gender_agreement", "determiner_noun_agreement_2", "regular_plural_subject_verb_agreement_1",
             "wh_questions_object_gap", "existential_there_quantifiers_1"]


def subset(suite: Suite, per: int) -> Suite:
    out = Suite(suite.name, suite.source, published=suite.published)
    seen: dict[str, int] = {}
    for i, p in enumerate(suite.paradigm):
        if seen.get(p, 0) < per:
            seen[p] = seen.get(p, 0) + 1
            out.add(suite.good[i], suite.bad[i], suite.pair_id[i], p, suite.term[i], suite.field_[i])
    return out


@torch.inference_mode()
def plain_loop(model, tok, suite: Suite, batch_pairs: int) -> tuple[np.ndarray, np.ndarray]:
    """The reference: a batch of pairs at a time, both sentences padded together, full logits."""
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    pad = tok.pad_token_id if tok.pad_token_id is not None else bos
    lp_good, lp_bad = [], []
    for b in range(0, len(suite), batch_pairs):
        texts = suite.good[b:b + batch_pairs] + suite.bad[b:b + batch_pairs]
        ids = [[bos] + tok(t, add_special_tokens=False)["input_ids"] for t in texts]
        T = max(map(len, ids))
        x = torch.full((len(ids), T), pad, dtype=torch.long)
        att = torch.zeros((len(ids), T), dtype=torch.long)
        for r, s in enumerate(ids):
            x[r, :len(s)], att[r, :len(s)] = torch.tensor(s), 1
        logp = F.log_softmax(model(input_ids=x, attention_mask=att).logits[:, :-1].float(), -1)
        tgt = logp.gather(2, x[:, 1:, None])[..., 0] * att[:, 1:]
        s = tgt.sum(1).numpy()
        n = len(texts) // 2
        lp_good += s[:n].tolist()
        lp_bad += s[n:].tolist()
    return np.array(lp_good), np.array(lp_bad)


def accuracy_by_paradigm(suite: Suite, good: np.ndarray, bad: np.ndarray) -> dict[str, float]:
    c = np.where(good > bad, 1.0, np.where(good == bad, 0.5, 0.0))
    p = np.array(suite.paradigm)
    return {name: float(100 * c[p == name].mean()) for name in suite.paradigms()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(default_data("blimp") or ""))
    ap.add_argument("--per-paradigm", type=int, default=200, help="pairs per paradigm for the SmolLM2 comparison")
    ap.add_argument("--batch-size", type=int, default=32, help="sentences per batch (the plain loop: batch/2 pairs)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pairs-7m", type=int, default=67_000, help="BLiMP pairs for the 7M timing (0: skip)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    full = load_suite("blimp", args.data, PARADIGMS)
    suite = subset(full, args.per_paradigm)

    converted = cache_root() / "models" / find_gguf().stem
    if not (converted / "config.json").exists():
        load_model()  # converts the wheel's GGUF once into the cache
    lm = load_hf_lm(converted, batch_size=args.batch_size)
    model, tok = load_model(str(converted))

    # wall time, and the process's CPU time: on a machine shared with other jobs the CPU seconds
    # say what each side costs, the wall seconds mostly what the neighbours were doing
    ours_t, ref_t, ours_c, ref_c = [], [], [], []
    for r in range(args.rounds):
        t, c = time.perf_counter(), time.process_time()
        table = probe(suite, lm)
        ours_t.append(time.perf_counter() - t)
        ours_c.append(time.process_time() - c)
        t, c = time.perf_counter(), time.process_time()
        ref_good, ref_bad = plain_loop(model, tok, suite, args.batch_size // 2)
        ref_t.append(time.perf_counter() - t)
        ref_c.append(time.process_time() - c)
        print(f"round {r + 1}: probe {ours_t[-1]:.1f} s ({ours_c[-1]:.1f} CPU s), plain loop {ref_t[-1]:.1f} s "
              f"({ref_c[-1]:.1f} CPU s), {len(suite)} pairs", flush=True)
    ours_acc = {r["group"]: r["accuracy"] for r in summarize(table) if r["level"] == "paradigm"}
    ref_acc = accuracy_by_paradigm(suite, ref_good, ref_bad)
    d = table.to_pydict()
    max_diff = float(max(np.abs(np.array(d["logp_good"]) - ref_good).max(), np.abs(np.array(d["logp_bad"]) - ref_bad).max()))
    agree = all(abs(ours_acc[p] - ref_acc[p]) <= 100.0 / args.per_paradigm + 1e-9 for p in ref_acc)
    print(f"{'paradigm':45s} {'probe':>7s} {'plain':>7s}")
    for p in ref_acc:
        print(f"{p:45s} {ours_acc[p]:7.1f} {ref_acc[p]:7.1f}")
    print(f"largest |log-prob difference| between the two: {max_diff:.2e} nats")
    ours, ref = len(suite) / min(ours_t), len(suite) / min(ref_t)
    res = {"ours": round(ours, 2), "reference": round(ref, 2), "ratio": round(ours / ref, 3), "agree": agree,
           "pairs": len(suite), "paradigms": len(ref_acc), "threads": args.threads,
           "mean_ours": round(float(np.mean(list(ours_acc.values()))), 2),
           "mean_reference": round(float(np.mean(list(ref_acc.values()))), 2), "max_logprob_diff": max_diff,
           "ours_per_cpu_s": round(len(suite) / min(ours_c), 2), "reference_per_cpu_s": round(len(suite) / min(ref_c), 2),
           "ratio_cpu": round(min(ref_c) / min(ours_c), 3)}

    if args.pairs_7m:
        # the 7M preset's shapes, a 4,096-token BPE from real English text (GSM8K), all (or --pairs-7m) BLiMP pairs
        gsm = REPO.parent / "shared" / "data" / "gsm8k" / "train.jsonl"
        texts = [json.loads(line)["question"] + " " + json.loads(line)["answer"] for line in gsm.read_text().splitlines()]
        btok = train_tokenizer(texts, 4096)
        torch.manual_seed(0)
        m7 = Transformer(preset("7m", vocab_size=btok.get_vocab_size())).eval()
        lm7 = model_lm("model", m7, btok, eot_id(btok), "cpu", 128)
        allp = load_suite("blimp", args.data)
        part = subset(allp, max(1, -(-args.pairs_7m // len(allp.paradigms()))))
        t, c = time.perf_counter(), time.process_time()
        score_suite(part, lm7.score)
        s7, c7 = time.perf_counter() - t, time.process_time() - c
        res.update({"pairs_7m": len(part), "seconds_7m": round(s7, 1), "cpu_seconds_7m": round(c7, 1),
                    "projected_cpu_seconds_67000_7m": round(c7 * 67_000 / len(part), 1), "params_7m": m7.num_params(),
                    "projected_seconds_67000_7m": round(s7 * 67_000 / len(part), 1)})
        print(f"7M preset ({m7.num_params():,} parameters): {len(part):,} pairs in {s7:.1f} s, {c7:.1f} CPU s "
              f"(all 67,000: {s7 * 67_000 / len(part):.0f} s at this rate)")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    res["loadavg"] = round(os.getloadavg()[0], 1)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
