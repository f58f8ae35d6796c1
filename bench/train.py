"""Training speed of the bundled trainer on this machine.

1. The matmul peak: large square matmuls on all cores (best of several trials), fp32 on a CPU
   (the better of MKL and oneDNN),
   bf16 on a GPU (`--device cuda`, which also turns on bf16 autocast).
2. The 7M preset (dim 288, 6 layers, 6 heads, context 256, vocabulary 4,096, batch 32) trained by
   the real trainer (`trainers.train.train_run`: curriculum scheduler, batch prefetch, logging,
   TensorBoard, checkpoints; torch.compile unless --no-compile), data parallel over one process per
   core as a long run's `processes = "auto"` trains (--processes), tokens/s over the training steps
   after the first (compilation) and the share of the peak used (MFU), counting
   6N + 12*layers*dim*context FLOPs per token as nanoGPT's estimate_mfu does. With --processes
   above 1 the trainer is also measured in one process with every thread ("tinyschool train, 1 process";
   `one_process_*` in the JSON: against nanoGPT, MFU, and against the plain loop, which is one
   process too, so `one_process_over_plain` is what the trainer's machinery costs).
3. A plain loop with the same model, the same loss function (compiled alike), the same batches and
   optimizer (forward, backward, clip, step): what the trainer's own machinery costs.
4. nanoGPT's GPT at the same parameter count and shape (LayerNorm, GELU MLP, learned positions)
   in the same plain loop, eager: the reference the issue names (`ratio_vs_nanogpt`); with
   --nanogpt-compile also compiled (`ratio_vs_nanogpt_compiled`).

Every measurement is taken in alternating rounds (the order swapped each round) and the best round
of each is kept, as is the best matmul trial, so that load from other processes biases no side; the
ratios are also given paired round by round (median over rounds), and MFU against the peak measured
right after the trainer in each round (median over rounds).
Ends with one JSON line.

    python bench/train.py [--steps 8] [--rounds 2] [--device cpu|cuda] [--processes N] [--no-compile] [--nanogpt-compile]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pyarrow as pa
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corpora import Corpus  # noqa: E402
from corpora.machine import available_cores  # noqa: E402
from trainers.config import Experiment  # noqa: E402
from trainers.model import Transformer, compile_unavailable, ONEDNN_AVAILABLE, onednn_matmul_t, preset  # noqa: E402
from trainers.prepare import prepare  # noqa: E402
from trainers.train import build_scheduler, model_config, resolve_device, set_up_process, train_run  # noqa: E402


def matmul_peaks(device: torch.device, dtype: torch.dtype = torch.float32, n: int = 2048, trials: int = 7,
                 reps: int = 4) -> dict[str, float]:
    """Best FLOP/s of n x n matmuls by library: torch's own (`a @ b`; MKL on a CPU) and, fp32 on a
    CPU, oneDNN (`onednn_matmul_t`, which the trainer's compiled linear layers use on non-Intel CPUs). MFU is taken against
    the better of them: the fastest product torch offers here."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    cpu_fp32 = device.type == "cpu" and dtype == torch.float32
    products = {"mkl" if cpu_fp32 else "torch": lambda: a @ b}
    if cpu_fp32 and ONEDNN_AVAILABLE:
        bt = b.t().contiguous()
        products["onednn"] = lambda: onednn_matmul_t(a, bt)
    best = {}
    for name, product in products.items():
        for _ in range(2):
            product()
        best[name] = 0.0
        for _ in range(trials):
            sync(device)
            t = time.perf_counter()
            for _ in range(reps):
                product()
            sync(device)
            best[name] = max(best[name], 2 * n ** 3 * reps / (time.perf_counter() - t))
    return best


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def make_corpus(root: Path, docs: int = 2500, seed: int = 0) -> None:
    """Stories from the bundled vocabulary: enough distinct words for a 4,096-token BPE."""
    repo = Path(__file__).resolve().parents[1]
    words = [line.split("\t")[0] for line in (repo / "prompts/vocab/default.tsv").read_text().splitlines()[1:] if line]
    names = (repo / "prompts/lists/names.txt").read_text().split()
    rng = random.Random(seed)
    rows = []
    for i in range(docs):
        who = rng.choice(names)
        sents = [f"Once upon a time, {who} saw a {rng.choice(words)}."]
        for _ in range(rng.randint(6, 14)):
            sents.append(" ".join(rng.choice(words) for _ in range(rng.randint(4, 10))).capitalize() + ".")
        rows.append({"id": f"b{i:05d}", "text": " ".join(sents)})
    Corpus(root).init("bench").write_shard("clean", "part-00000", pa.Table.from_pylist(rows))


class NanoGPT(nn.Module):
    """nanoGPT's GPT (Karpathy), no dropout, no biases: the reference shape at equal size."""

    def __init__(self, vocab: int, dim: int, layers: int, heads: int, context: int):
        super().__init__()
        self.heads = heads
        self.wte, self.wpe = nn.Embedding(vocab, dim), nn.Embedding(context, dim)
        self.blocks = nn.ModuleList(nn.ModuleDict({
            "ln1": nn.LayerNorm(dim, bias=False), "qkv": nn.Linear(dim, 3 * dim, bias=False), "proj": nn.Linear(dim, dim, bias=False),
            "ln2": nn.LayerNorm(dim, bias=False), "fc": nn.Linear(dim, 4 * dim, bias=False), "out": nn.Linear(4 * dim, dim, bias=False),
        }) for _ in range(layers))
        self.ln_f = nn.LayerNorm(dim, bias=False)
        for p in self.parameters():
            if p.dim() >= 2:
                nn.init.normal_(p, std=0.02)

    def loss(self, idx, targets):
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        for b in self.blocks:
            q, k, v = b["qkv"](b["ln1"](x)).split(x.shape[-1], dim=2)
            q, k, v = (t.view(B, T, self.heads, -1).transpose(1, 2) for t in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, -1)
            x = x + b["proj"](y)
            x = x + b["out"](F.gelu(b["fc"](b["ln2"](x))))
        logits = F.linear(self.ln_f(x), self.wte.weight)
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))


def plain_loop(model: nn.Module, batches, device, dtype: str, compile: bool = False, lr: float = 1e-3) -> float:
    """tokens/s of the simplest loop: forward, backward, clip, AdamW step; the first step (compilation,
    warm-up) is not timed, as the trainer does not time its first step."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1,
                            fused=device.type in ("cpu", "cuda"))
    loss_fn = torch.compile(model.loss) if compile else model.loss
    ctx = torch.autocast(device.type, dtype=torch.bfloat16) if dtype == "bfloat16" else torch.autocast(device.type, enabled=False)
    batches = [(x.to(device), y.to(device)) for x, y in batches]

    def step(x, y):
        with ctx:
            loss = loss_fn(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=True)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    step(*batches[0]).item()
    sync(device)
    t = time.perf_counter()
    for x, y in batches[1:]:
        loss = step(x, y)
    loss.item()
    sync(device)
    return sum(x.numel() for x, _ in batches[1:]) / (time.perf_counter() - t)


def _steps_per_s(preset_name: str, threads: int, steps: int, batch: int, seed: int, compile: bool = False) -> float:
    """One worker of the ablation measurement: training tokens/s of a preset at `threads` (eager,
    or compiled as a long run's `compile = "auto"` does)."""
    set_up_process(threads)  # as every training run does
    torch.manual_seed(seed)
    model = Transformer(preset(preset_name, vocab_size=4096 if preset_name == "7m" else 512))
    T = model.cfg.context
    batches = [torch.randint(0, model.cfg.vocab_size, (batch, T + 1)) for _ in range(steps + 1)]
    return plain_loop(model, [(b[:, :-1], b[:, 1:]) for b in batches], torch.device("cpu"), "float32", compile)


def ablate_plan(steps: int, rounds: int, presets: tuple[str, ...] = ("tiny", "7m"), compile: bool = False) -> dict:
    """Aggregate training throughput of an ablation on this machine: one run at a time with all
    cores' threads, against one run per core with one thread each (processes, as `ablate` runs them)."""
    cores = available_cores()
    out = {}
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(max_workers=cores, mp_context=ctx) as pool:
        for name, batch in ((p, {"tiny": 16}.get(p, 32)) for p in presets):
            serial = split = 0.0
            for r in range(rounds):
                for mode in (("serial", "split") if r % 2 == 0 else ("split", "serial")):
                    if mode == "serial":
                        serial = max(serial, pool.submit(_steps_per_s, name, cores, steps, batch, r, compile).result())
                    else:
                        futs = [pool.submit(_steps_per_s, name, 1, steps, batch, r * cores + i, compile) for i in range(cores)]
                        split = max(split, sum(f.result() for f in futs))
            out[name] = {"one_at_a_time_tokens_per_s": round(serial, 1), "split_tokens_per_s": round(split, 1),
                         "split_over_one_at_a_time": round(split / serial, 3)}
            print(f"{name}{' compiled' if compile else ''}: one run at a time with {cores} threads {serial:,.0f} tokens/s; {cores} runs with 1 thread "
                  f"{split:,.0f} tokens/s together ({split / serial:.2f}x)", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=8, help="optimizer steps per measurement (8,192 tokens each; the first is not timed)")
    ap.add_argument("--batch", type=int, default=32, help="sequences of 256 tokens per step")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], help="default: float32 on a CPU, bfloat16 (autocast) on a GPU")
    ap.add_argument("--threads", type=int, default=available_cores())
    ap.add_argument("--processes", type=int, help="the trainer's data-parallel processes (default: one per core on a CPU, "
                    "as a long run's processes = \"auto\"; 1 on a GPU)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best of each measurement is kept")
    ap.add_argument("--no-compile", dest="compile", action="store_false", help="train eagerly (no torch.compile)")
    ap.add_argument("--nanogpt-compile", action="store_true", help="also measure nanoGPT's GPT compiled")
    ap.add_argument("--ablate-plan", action="store_true", help="only measure one run at a time against one run per core "
                    "(tiny and 7m presets, eager), the rule trainers.ablate.plan encodes")
    ap.add_argument("--plan-presets", default="tiny,7m", help="with --ablate-plan: the presets to measure")
    ap.add_argument("--plan-compile", action="store_true", help="with --ablate-plan: compile the step, as long runs do")
    args = ap.parse_args()
    if args.ablate_plan:
        res = ablate_plan(args.steps, args.rounds, tuple(args.plan_presets.split(",")), args.plan_compile)
        print(json.dumps({"metric": "ablate_plan", "cores": available_cores(), "compile": args.plan_compile, "load_average": round(os.getloadavg()[0], 1), **res}))
        return 0
    memory = set_up_process(args.threads)  # process-wide, as every training run does: all sides below get it
    device = resolve_device(args.device)
    dtype = args.dtype or ("bfloat16" if device.type == "cuda" else "float32")
    why = compile_unavailable(device) if args.compile else None
    if why:
        print(why)
    compile = args.compile and why is None
    processes = args.processes or (args.threads if device.type == "cpu" else 1)
    print(f"device {device}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, {dtype}, "
          f"compile {compile}, trainer processes {processes}, freed memory kept {memory}, load average {os.getloadavg()[0]:.1f}", flush=True)
    peak_dtype = torch.bfloat16 if dtype == "bfloat16" else torch.float32
    peak_n = 8192 if device.type == "cuda" else 2048
    peaks = matmul_peaks(device, peak_dtype, peak_n)
    print(f"{dtype} matmul peak: " + ", ".join(f"{k} {v / 1e9:.1f}" for k, v in peaks.items()) + " GFLOP/s", flush=True)
    if device.type == "cpu" and dtype == "float32" and getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)():
        print("this CPU has AMX: --dtype bfloat16 measures bf16 autocast, [train] dtype = \"bfloat16\" (1.5-1.8x on the README's AMX host)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_corpus(tmp / "corpus")
        tokens = args.steps * args.batch * 256
        exp = Experiment.model_validate({
            "name": "bench", "corpus": str(tmp / "corpus"), "out": str(tmp / "run"), "seeds": [1], "scorer": "length",
            "heldout": 0.01, "tokenizer": {"vocab_size": 4096}, "model": {"preset": "7m"},
            "train": {"tokens": tokens, "batch_size": args.batch, "context": 256, "eval_every": 10 ** 6, "log_every": 10,
                      "eval_docs": 4, "device": args.device, "dtype": dtype, "threads": args.threads, "warmup": 0.1,
                      "compile": compile, "processes": processes},
            "samples": {"prompts": ["Once"], "max_tokens": 2},
            "curricula": [{"name": "easy-to-hard", "order": "easy_to_hard", "scorer": "length", "pacing": "competence", "start": 0.3}],
        })
        prep = prepare(exp)
        mcfg = model_config(exp, prep.vocab_size)
        sched = build_scheduler(prep, exp.curricula[0], exp, 1, 256, args.steps)
        batches = [sched.batch(s) for s in range(args.steps)]  # the very batches the trainer will see
        model = Transformer(mcfg)
        n_params, fpt = model.num_params(), model.flops_per_token()
        print(f"model: {n_params:,} parameters (vocab {prep.vocab_size}), {fpt / 1e6:.1f} MFLOP/token", flush=True)
        torch.manual_seed(1)
        gpt_params = sum(p.numel() for p in NanoGPT(prep.vocab_size, 288, 6, 6, 256).parameters())
        best: dict[str, float] = {}
        round_peaks: list[float] = []
        rounds: dict[str, list[float]] = {}

        def record(name: str, tps: float) -> None:
            best[name] = max(best.get(name, 0.0), tps)
            rounds.setdefault(name, []).append(tps)
            print(f"round {r + 1}: {name:<28} {tps:>9,.0f} tokens/s", flush=True)

        def plain():
            torch.manual_seed(1)
            record("plain loop", plain_loop(Transformer(mcfg).to(device), batches, device, dtype, compile))

        def trainer():
            exp_r = exp.model_copy(update={"out": str(tmp / f"run{r}")})
            record("tinyschool train", train_run(exp_r, threads=args.threads, prep=prep)["tokens_per_s"])
            near = matmul_peaks(device, peak_dtype, peak_n, trials=3)  # the peak right after: MFU of this round
            for k, v in near.items():
                peaks[k] = max(peaks[k], v)
            round_peaks.append(max(near.values()))

        def nano():
            torch.manual_seed(1)
            record("nanoGPT GPT, plain loop", plain_loop(NanoGPT(prep.vocab_size, 288, 6, 6, 256).to(device), batches, device, dtype))

        def nano_compiled():
            torch.manual_seed(1)
            record("nanoGPT GPT compiled", plain_loop(NanoGPT(prep.vocab_size, 288, 6, 6, 256).to(device), batches, device, dtype, True))

        def trainer_one_process():
            exp_r = exp.model_copy(update={"out": str(tmp / f"one{r}"), "train": exp.train.model_copy(update={"processes": 1})})
            record("tinyschool train, 1 process", train_run(exp_r, threads=args.threads, prep=prep)["tokens_per_s"])

        sides = ([trainer, nano, plain] + ([trainer_one_process] if processes > 1 else [])
                 + ([nano_compiled] if args.nanogpt_compile and compile else []))
        for r in range(args.rounds):  # alternate: load from other processes hits every side
            for fn in (sides if r % 2 == 0 else sides[::-1]):
                fn()
    peak = max(peaks.values())  # before the rounds and after the trainer in each
    ours, plain_tps, nano_tps = best["tinyschool train"], best["plain loop"], best["nanoGPT GPT, plain loop"]
    mfu = ours * fpt / peak
    nano_fpt = 6 * gpt_params + 12 * 6 * 288 * 256
    print(f"{dtype} matmul peak (best of before and during the rounds): " + ", ".join(f"{k} {v / 1e9:.1f}" for k, v in peaks.items())
          + f" GFLOP/s; load average now {os.getloadavg()[0]:.1f}")
    print(f"MFU of tinyschool train: {mfu:.1%} (target 75%); nanoGPT GPT in a plain loop: {nano_tps * nano_fpt / peak:.1%}")
    print(f"tinyschool train / plain loop: {ours / plain_tps:.3f} (target 0.97); / nanoGPT at equal size: {ours / nano_tps:.2f} (target 1.0)")
    res = {"metric": "train_tokens_per_s", "ours": round(ours, 1), "reference": round(nano_tps, 1),
           "ratio_vs_nanogpt": round(ours / nano_tps, 3), "target": 1.0, "mfu": round(mfu, 3), "mfu_target": 0.75,
           "trainer_over_plain": round(ours / plain_tps, 3), "plain_tokens_per_s": round(plain_tps, 1),
           "nanogpt_tokens_per_s": round(nano_tps, 1), "peak_gflops": round(peak / 1e9, 1),
           "peak_gflops_by_library": {k: round(v / 1e9, 1) for k, v in peaks.items()}, "params": n_params,
           "nanogpt_params": gpt_params, "compile": compile, "device": str(device), "dtype": dtype,
           "threads": args.threads, "processes": processes, "batch": args.batch, "steps": args.steps, "load_average": round(os.getloadavg()[0], 1)}
    if "tinyschool train, 1 process" in best:
        one = best["tinyschool train, 1 process"]
        res["one_process_tokens_per_s"] = round(one, 1)
        res["one_process_ratio_vs_nanogpt"] = round(one / nano_tps, 3)
        res["one_process_mfu"] = round(one * fpt / peak, 3)
        # the trainer's machinery against the plain loop, both one process with every thread
        res["one_process_over_plain"] = round(one / plain_tps, 3)
        res["one_process_over_plain_paired_median"] = round(statistics.median(
            a / b for a, b in zip(rounds["tinyschool train, 1 process"], rounds["plain loop"])), 3)
        print(f"tinyschool train in 1 process with {args.threads} threads: {one:,.0f} tokens/s, MFU {one * fpt / peak:.1%}, "
              f"/ nanoGPT {one / nano_tps:.2f}, / plain loop {one / plain_tps:.3f} (paired median "
              f"{res['one_process_over_plain_paired_median']:.3f}); {processes} processes over 1: {ours / one:.2f}x")
    if "nanoGPT GPT compiled" in best:
        res["ratio_vs_nanogpt_compiled"] = round(ours / best["nanoGPT GPT compiled"], 3)
    # the same ratios paired round by round (each side against the other's measurement of the same
    # round), median over rounds: less moved by the host's speed drifting between rounds
    for key, other in (("ratio_vs_nanogpt_paired_median", "nanoGPT GPT, plain loop"), ("trainer_over_plain_paired_median", "plain loop")):
        res[key] = round(statistics.median(a / b for a, b in zip(rounds["tinyschool train"], rounds[other])), 3)
    # MFU of each round against the peak measured right after the trainer in that round, median
    res["mfu_paired_median"] = round(statistics.median(t * fpt / p for t, p in zip(rounds["tinyschool train"], round_peaks)), 3)
    print(f"paired round by round, median: / nanoGPT {res['ratio_vs_nanogpt_paired_median']:.2f}, "
          f"/ plain loop {res['trainer_over_plain_paired_median']:.3f}, MFU {res['mfu_paired_median']:.1%} "
          f"(peaks after the trainer: {', '.join(f'{p / 1e9:.1f}' for p in round_peaks)} GFLOP/s)")
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
