"""One training run: a curriculum and a seed at a fixed token budget.

AdamW (fused), warmup + cosine or warmup-stable-decay, gradient clipping; held-out loss every N steps,
overall and by difficulty bucket; a checkpoint (model, optimizer, LR scheduler, scheduler position,
metrics so far) at every evaluation, from which a re-run resumes and follows the same loss curve;
samples at the end; metrics to Parquet and TensorBoard.

Per-step overhead is kept off the hot path: the next batch is built on a helper thread while the
current step runs, and losses stay on the device until a log step reads them all at once.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from trainers.config import CurriculumConfig, Experiment, TrainConfig
from trainers.evaluate import autocast_for, doc_losses
from trainers.model import ModelConfig, Transformer, preset
from trainers.prepare import Prepared, load_prepared, prepare
from trainers.schedule import build_scheduler  # curriculum settings -> batch scheduler (#19)

CHECKPOINT = "checkpoint.pt"


class TrainError(Exception):
    pass


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TrainError(f"train.device = {name!r} but this torch has no CUDA device (use \"cpu\" or \"auto\")")
    return dev


def model_config(exp: Experiment, vocab_size: int, preset_name: str | None = None) -> ModelConfig:
    m = exp.model
    try:
        if preset_name:
            return preset(preset_name, vocab_size=vocab_size)
        return preset(m.preset, vocab_size=vocab_size, dim=m.dim, n_layers=m.n_layers, n_heads=m.n_heads,
                      n_kv_heads=m.n_kv_heads, hidden_dim=m.hidden_dim, context=exp.train.context)
    except KeyError as e:
        raise TrainError(str(e.args[0])) from None


def lr_lambda(cfg: TrainConfig, total_steps: int) -> Callable[[int], float]:
    """LR multiplier at a step: linear warmup, then cosine to min_lr_ratio, or WSD (constant, then
    a linear decay over the last `decay` share of steps)."""
    warm = int(cfg.warmup * total_steps)
    floor = cfg.min_lr_ratio

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if cfg.schedule == "cosine":
            p = (step - warm) / max(1, total_steps - warm)
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, p)))
        decay_start = total_steps - int(cfg.decay * total_steps)
        if step < decay_start:
            return 1.0
        return 1 - (1 - floor) * min(1.0, (step - decay_start) / max(1, total_steps - decay_start))

    return f


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=device.type in ("cpu", "cuda"))


def run_dir(exp: Experiment, curriculum: str, seed: int) -> Path:
    return exp.out_dir / curriculum / f"seed{seed}"


def _fingerprint(exp: Experiment, cur: CurriculumConfig, seed: int, data_fp: str) -> str:
    d = {"data": data_fp, "model": exp.model.model_dump(), "train": exp.train.model_dump(exclude={"threads", "device"}),
         "curriculum": cur.model_dump(), "seed": seed, "scorer": exp.scorer}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _write_parquet(rows: list[dict], path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(pa.Table.from_pylist(rows), tmp, compression="zstd")
    os.replace(tmp, path)


def _save_checkpoint(path: Path, state: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train_run(exp: Experiment, curriculum: str | None = None, seed: int | None = None, *, threads: int | None = None,
              prep: Prepared | None = None, progress: Callable[[int, int], None] | None = None,
              stop_at_step: int | None = None, log: Callable[[str], None] = lambda s: None) -> dict:
    """Train one (curriculum, seed) run, resuming from its checkpoint if there is one.

    `stop_at_step` ends the run early without a checkpoint at that step, as a crash would: a
    re-run resumes from the last checkpoint.
    Returns a summary: final and best validation loss, steps, tokens, tokens/s, the run folder.
    """
    cur = exp.curriculum(curriculum)
    seed = exp.seeds[0] if seed is None else seed
    cfg = exp.train
    torch.set_num_threads(threads or cfg.threads or os.cpu_count() or 1)
    device = resolve_device(cfg.device)
    prep = prep or prepare(exp)
    mcfg = model_config(exp, prep.vocab_size)
    T = mcfg.context
    total_steps = max(1, math.ceil(cfg.tokens / (cfg.batch_size * T)))
    out = run_dir(exp, cur.name, seed)
    out.mkdir(parents=True, exist_ok=True)
    fp = _fingerprint(exp, cur, seed, prep.fingerprint)
    done = finished(out, fp)
    if done is not None:
        return done
    sched_data = build_scheduler(prep, cur, exp, seed, T, total_steps)

    torch.manual_seed(seed)
    model = Transformer(mcfg).to(device)
    opt = make_optimizer(model, cfg, device)
    lr_sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg, total_steps))
    step, tokens, rows = 0, 0, []
    ckpt_path = out / CHECKPOINT
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location=device, weights_only=False)
        if ck["fingerprint"] != fp:
            raise TrainError(f"{out}: holds a run with other settings; remove the folder or change the experiment's `out`")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        lr_sched.load_state_dict(ck["lr_scheduler"])
        step, tokens, rows = ck["scheduler"]["step"], ck["tokens"], ck["metrics"]
        if ck.get("done"):
            return _summary(exp, cur.name, seed, out, rows, model, ck.get("tokens_per_s"))
        log(f"{cur.name} seed {seed}: resuming at step {step}/{total_steps}")
    (out / "tokenizer.json").write_bytes(prep.tokenizer_path.read_bytes())
    (out / "config.json").write_text(json.dumps({"experiment": exp.name, "curriculum": cur.model_dump(), "seed": seed,
                                                 "model": mcfg.to_dict(), "train": cfg.model_dump(), "total_steps": total_steps,
                                                 "params": model.num_params(), "fingerprint": fp}, indent=2) + "\n")

    main = prep.sources["main"]
    val_idx = main.val_index()[: cfg.eval_docs]
    val_docs = [main.docs[i] for i in val_idx]
    val_bucket = main.bucket[val_idx]
    extra_val = {n: [s.docs[i] for i in s.val_index()[: cfg.eval_docs]] for n, s in prep.sources.items()
                 if n != "main" and n in sched_data.pools}
    from torch.utils.tensorboard import SummaryWriter

    tb = SummaryWriter(str(out / "tb"), purge_step=step if step else None)
    base = {"curriculum": cur.name, "seed": seed}

    def metric(name: str, value: float, at_step: int, at_tokens: int) -> None:
        rows.append({**base, "step": at_step, "tokens": at_tokens, "metric": name, "value": float(value)})
        tb.add_scalar(name, float(value), at_tokens)

    def evaluate(at_step: int, at_tokens: int) -> None:
        sums, counts = doc_losses(model, val_docs, prep.eot, T, max(32, cfg.batch_size), device, cfg.dtype)
        metric("val_loss", sums.sum() / max(1, counts.sum()), at_step, at_tokens)
        for b, bname in enumerate(prep.bucket_names):
            sel = val_bucket == b
            if len(prep.bucket_names) > 1 and sel.any():
                metric(f"val_loss/{bname}", sums[sel].sum() / max(1, counts[sel].sum()), at_step, at_tokens)
        for n, docs in extra_val.items():
            s, c = doc_losses(model, docs, prep.eot, T, max(32, cfg.batch_size), device, cfg.dtype)
            metric(f"val_loss/{n}", s.sum() / max(1, c.sum()), at_step, at_tokens)

    if step == 0:
        evaluate(0, 0)
    pending: list[tuple[int, int, torch.Tensor, torch.Tensor, float]] = []

    def flush() -> None:
        if not pending:
            return
        losses = torch.stack([p[2] for p in pending]).tolist()  # one sync for all steps since the last log
        norms = torch.stack([p[3] for p in pending]).tolist()
        for (s, tk, _, _, lr), loss, gn in zip(pending, losses, norms):
            metric("train_loss", loss, s, tk)
            metric("grad_norm", gn, s, tk)
            metric("lr", lr, s, tk)
        for k, v in sched_data.describe(pending[-1][0]).items():
            metric(k, v, pending[-1][0], pending[-1][1])
        pending.clear()

    end = min(total_steps, stop_at_step) if stop_at_step is not None else total_steps
    ckpt_every = cfg.checkpoint_every or cfg.eval_every
    if device.type == "cuda":  # pinned host memory, copied to the GPU on the helper thread
        def load(s):
            return tuple(t.pin_memory().to(device, non_blocking=True) for t in sched_data.batch(s))
    elif device.type != "cpu":
        def load(s):
            return tuple(t.to(device) for t in sched_data.batch(s))
    else:
        load = sched_data.batch
    pool = ThreadPoolExecutor(max_workers=1)
    nxt = pool.submit(load, step) if step < end else None
    model.train()
    # training time only: evaluation, checkpoints and samples are timed apart (nanoGPT's MFU
    # likewise times iterations, not evaluations)
    t0, side, tokens0, tps = time.perf_counter(), 0.0, tokens, None
    try:
        while step < end:
            x, y = nxt.result()
            if step + 1 < end:
                nxt = pool.submit(load, step + 1)  # built while this step computes
            lr = opt.param_groups[0]["lr"]
            with autocast_for(device, cfg.dtype):
                loss = model.loss(x, y)
            loss.backward()
            gn = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip if cfg.grad_clip > 0 else float("inf"), foreach=True)
            opt.step()
            opt.zero_grad(set_to_none=True)
            lr_sched.step()
            step += 1
            tokens += x.numel()
            pending.append((step, tokens, loss.detach(), gn.detach(), lr))
            if step % cfg.log_every == 0 or step == total_steps:
                flush()
                if progress:
                    progress(step, total_steps)
            if step % cfg.eval_every == 0 or step == total_steps:
                flush()
                ts = time.perf_counter()
                evaluate(step, tokens)
                _write_parquet(rows, out / "metrics.parquet")
                side += time.perf_counter() - ts
            if step % ckpt_every == 0 or step == total_steps:
                flush()
                ts = time.perf_counter()
                done = step == total_steps
                if done:
                    train_s = ts - t0 - side
                    tps = (tokens - tokens0) / train_s if train_s > 0 else None
                    tb.add_scalar("tokens_per_s", tps or 0.0, tokens)  # not in metrics.parquet: its bytes stay reproducible
                    write_samples(model, prep, exp, out, device)
                    _write_parquet(rows, out / "metrics.parquet")
                _save_checkpoint(ckpt_path, {
                    "fingerprint": fp, "model": model.state_dict(), "optimizer": opt.state_dict(),
                    "lr_scheduler": lr_sched.state_dict(), "scheduler": {"step": step, "seed": seed, "total_steps": total_steps},
                    "tokens": tokens, "metrics": rows, "done": done, "model_config": mcfg.to_dict(),
                    "tokens_per_s": tps})
                side += time.perf_counter() - ts
    finally:
        pool.shutdown(wait=True)
        tb.close()
    _write_parquet(rows, out / "metrics.parquet")
    summary = _summary(exp, cur.name, seed, out, rows, model, tps)
    if step == total_steps:
        (out / "summary.json").write_text(json.dumps({**summary, "fingerprint": fp}, indent=2) + "\n")
    return summary


def finished(out: Path, fingerprint: str) -> dict | None:
    """The summary of a finished run with these settings, else None."""
    p = out / "summary.json"
    if not p.exists():
        return None
    d = json.loads(p.read_text())
    if d.pop("fingerprint", None) != fingerprint:
        raise TrainError(f"{out}: holds a run with other settings or older data (the corpus changed?); "
                         "remove the folder or change the experiment's `out`")
    return d


def _summary(exp, curriculum, seed, out, rows, model, tps) -> dict:
    val = [(r["tokens"], r["value"]) for r in rows if r["metric"] == "val_loss"]
    return {"curriculum": curriculum, "seed": seed, "run": str(out), "params": model.num_params(),
            "steps": max((r["step"] for r in rows), default=0), "tokens": max((r["tokens"] for r in rows), default=0),
            "final_val_loss": val[-1][1] if val else None, "best_val_loss": min(v for _, v in val) if val else None,
            "tokens_per_s": tps}


def write_samples(model, prep: Prepared, exp: Experiment, out: Path, device) -> list[dict]:
    from trainers.sample import sample_texts
    from trainers.tokenizer import load_tokenizer

    s = exp.samples
    tok = load_tokenizer(prep.tokenizer_path)
    outs = sample_texts(model, tok, s.prompts, max_tokens=s.max_tokens, temperature=s.temperature, top_k=s.top_k,
                        seed=s.seed, device=device)
    recs = [{"prompt": p, "completion": c, "temperature": s.temperature, "seed": s.seed} for p, c in zip(s.prompts, outs)]
    with open(out / "samples.jsonl", "w") as f:
        for r in recs:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    md = ["# Samples", "", f"temperature {s.temperature}, top-k {s.top_k}, seed {s.seed}", ""]
    for r in recs:
        md += [f"**{r['prompt']}**{r['completion']}", ""]
    (out / "samples.md").write_text("\n".join(md))
    return recs


def reference_doc_loss(exp: Experiment, prep: Prepared) -> Callable[[str], np.ndarray]:
    """Train the small reference model of the model_loss scorer (random order over the training
    split) and return a function giving each document's mean loss under it, by source name."""
    cfg = exp.train
    torch.set_num_threads(cfg.threads or os.cpu_count() or 1)
    device = resolve_device(cfg.device)
    mcfg = model_config(exp, prep.vocab_size, preset_name=exp.reference.preset)
    mcfg = replace(mcfg, context=min(mcfg.context, exp.train.context or mcfg.context))
    total = max(1, math.ceil(exp.reference.tokens / (cfg.batch_size * mcfg.context)))
    ref_cur = CurriculumConfig(name="reference")
    sched = build_scheduler(prep, ref_cur, exp, 0, mcfg.context, total)
    torch.manual_seed(0)
    model = Transformer(mcfg).to(device)
    opt = make_optimizer(model, cfg, device)
    lrs = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg, total))
    for step in range(total):
        x, y = sched.batch(step)
        with autocast_for(device, cfg.dtype):
            loss = model.loss(x.to(device), y.to(device))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip or float("inf"))
        opt.step()
        opt.zero_grad(set_to_none=True)
        lrs.step()

    def doc_loss(source: str) -> np.ndarray:
        s, c = doc_losses(model, prep.sources[source].docs, prep.eot, mcfg.context, max(32, cfg.batch_size), device, cfg.dtype)
        return s / np.maximum(c, 1)

    return doc_loss
