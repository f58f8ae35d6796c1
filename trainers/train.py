"""One training run: a curriculum and a seed at a fixed token budget.

Read `train_run` top to bottom, as nanoGPT's train.py: set-up; one flat loop (the learning rate
from the pure function `lr_at`, evaluation and checkpoint at the top of an iteration, the step,
logging at the bottom); then the finish (samples, summary).

AdamW (fused), warmup + cosine or warmup-stable-decay, gradient clipping. Held-out loss and bits
per byte every `eval_every` steps, overall, by difficulty bucket and per mixed-in corpus. The
checkpoint holds what a resume needs and nothing stored elsewhere: model, optimizer, scheduler
position (step, tokens, seed) and config; a re-run resumes from it and retraces the same loss
curve number for number. Metrics go to metrics.parquet (long format: step, tokens, metric, value)
and TensorBoard.

Per-step overhead is kept off the hot path: the next batch is built (and copied to the device) on
a helper thread while the current step runs, and losses stay on the device until a log step reads
them all at once.
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
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from corpora.machine import available_cores
from trainers import parallel
from trainers.config import CurriculumConfig, Experiment, TrainConfig
from trainers.evaluate import HeldOut, autocast_for, doc_losses, token_bytes
from trainers.model import ModelConfig, Transformer, compile_unavailable, keep_freed_memory, preset, training_loss
from trainers.prepare import Prepared, load_prepared, prepare
from trainers.sample import sample_texts
from trainers.tokenizer import load_tokenizer
from trainers.schedule import build_scheduler  # curriculum settings -> batch scheduler

CHECKPOINT = "checkpoint.pt"
SNAPSHOTS = "checkpoints"  # <run>/checkpoints/step<N>.pt: the model at step N, on the `[probe] probe_every` schedule
METRICS = "metrics.parquet"
COMPILE_FLOPS = 1e14  # compile = "auto" on a CPU: runs of more training FLOPs (~10 minutes at 2 cores' peak)
# One process per core beats one process with every core's threads for the presets measured (`python
# bench/train.py --ablate-plan`, 2 cores: tiny 1.11-1.20x, 7m 1.05-1.18x eager and 1.15x compiled;
# README): a process's own threads idle in its small ops and its optimizer step. Larger models (15m at
# vocabulary 32,000: ~97 MFLOP per token, not measured) keep one process with all threads, which also
# spares memory. Below this many training FLOPs per token, runs (`ablate`) and a run's steps
# (`processes = "auto"`) are split over the cores.
SPLIT_BELOW_FLOPS_PER_TOKEN = 60e6


class TrainError(Exception):
    pass


def set_up_process(threads: int | None) -> bool:
    """What every training (and reference-model training) sets process-wide: its torch threads
    (default: every core this process may run on) and freed memory kept for reuse (returns whether
    that took effect)."""
    torch.set_num_threads(threads or available_cores())
    return keep_freed_memory()


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


def lr_at(step: int, cfg: TrainConfig, total_steps: int) -> float:
    """The learning rate of the step that starts after `step` steps: linear warmup, then cosine
    down to min_lr_ratio, or WSD (constant, then a linear decay over the last `decay` share)."""
    warm = int(cfg.warmup * total_steps)
    floor = cfg.min_lr_ratio
    if step < warm:
        return cfg.lr * (step + 1) / warm
    if cfg.schedule == "cosine":
        p = (step - warm) / max(1, total_steps - warm)
        return cfg.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))
    decay_start = total_steps - int(cfg.decay * total_steps)
    if step < decay_start:
        return cfg.lr
    return cfg.lr * (1 - (1 - floor) * min(1.0, (step - decay_start) / max(1, total_steps - decay_start)))


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=device.type in ("cpu", "cuda"))


def use_compile(cfg: TrainConfig, device: torch.device, flops: float, log: Callable[[str], None]) -> bool:
    """Whether to torch.compile the training step: as configured; "auto" compiles on a GPU, and on
    a CPU when the run's training FLOPs repay the compilation (about a minute on 2 cores)."""
    wanted = cfg.compile if cfg.compile != "auto" else device.type == "cuda" or (device.type == "cpu" and flops >= COMPILE_FLOPS)
    if not wanted:
        return False
    why = compile_unavailable(device)
    if why:
        log(why)
    return why is None


def data_parallel(cfg: TrainConfig, device: torch.device, flops_per_token: float, cores: int) -> int:
    """How many processes train the run (`[train] processes`): as configured; "auto": one per core
    on a CPU when the run repays starting them (as long as `compile = "auto"` asks) and the model is
    under SPLIT_BELOW_FLOPS_PER_TOKEN, unless `threads` is set (one process with that many)."""
    n = cfg.processes
    if n == "auto":
        small, long = flops_per_token < SPLIT_BELOW_FLOPS_PER_TOKEN, flops_per_token * cfg.tokens >= COMPILE_FLOPS
        n = cores if device.type == "cpu" and small and long and cfg.threads is None else 1
    if n < 1:
        raise TrainError(f"[train] processes = {n}: must be at least 1")
    if n > 1 and device.type != "cpu":
        raise TrainError(f"[train] processes = {n}: data parallelism is for a CPU's cores (device {device})")
    return n


def synchronize(device: torch.device) -> float:
    """Wait for the device's queued work; the time after it (for timing training apart from the rest)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def train_step(loss_fn: Callable, model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
               lr: float, cfg: TrainConfig, group: parallel.Group | None = None, weight: float = 1.0
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step at learning rate `lr`; returns the loss and the gradient norm, left on the device.
    Data parallel (`group`): x, y are this rank's share of the batch, `weight` its share's weight."""
    for g in opt.param_groups:
        g["lr"] = lr
    with autocast_for(x.device, cfg.dtype):
        loss = loss_fn(x, y)
    if weight != 1.0:  # an uneven data-parallel share
        loss = loss * weight
    loss.backward()
    if group is not None:  # every rank: the whole batch's gradient and loss
        loss = group.average_gradients(list(model.parameters()), loss)
    gn = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip if cfg.grad_clip > 0 else float("inf"), foreach=True)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.detach(), gn.detach()


def prefetch(batch: Callable[[int], tuple[torch.Tensor, torch.Tensor]], steps: range,
             device: torch.device) -> Iterator[tuple]:
    """The batches of `steps` on the device, each built on a helper thread while the previous step
    computes (through pinned memory to a GPU). Batches may differ in sequence length."""
    def load(s):
        x, y, *rest = batch(s)  # rest: what goes with the batch (a data-parallel share's weight)
        if device.type == "cuda":
            x, y = x.pin_memory(), y.pin_memory()
        return x.to(device, non_blocking=True), y.to(device, non_blocking=True), *rest

    with ThreadPoolExecutor(max_workers=1) as pool:
        nxt = pool.submit(load, steps[0]) if len(steps) else None
        for s in steps:
            cur = nxt.result()
            if s + 1 < steps.stop:
                nxt = pool.submit(load, s + 1)
            yield cur


def held_out(prep: Prepared, cfg: TrainConfig, sources: list[str]) -> HeldOut:
    """The first `eval_docs` held-out documents of each corpus the run trains on."""
    sets = {}
    for name in sources:
        src = prep.sources[name]
        sets[name] = [src.docs[i] for i in src.val_index()[: cfg.eval_docs]]
    main = prep.sources["main"]
    return HeldOut(sets, main.bucket[main.val_index()[: cfg.eval_docs]], prep.bucket_names,
                   token_bytes(load_tokenizer(prep.tokenizer_path)), prep.eot)


def run_dir(exp: Experiment, curriculum: str, seed: int) -> Path:
    return exp.out_dir / curriculum / f"seed{seed}"


def run_fingerprint(exp: Experiment, cur: CurriculumConfig, seed: int, data_fp: str) -> str:
    d = {"data": data_fp, "model": exp.model.model_dump(), "train": exp.train.model_dump(exclude={"threads", "processes", "device"}),
         "curriculum": cur.model_dump(), "seed": seed, "scorer": exp.scorer}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


class MetricLog:
    """The rows of metrics.parquet (curriculum, seed, step, tokens, metric, value), mirrored to
    TensorBoard. Training losses stay on the device until `flush` reads them in one sync."""

    def __init__(self, out: Path, base: dict, rows: list[dict], purge_step: int | None):
        from torch.utils.tensorboard import SummaryWriter  # optional heavy import, only when training

        self.base, self.rows, self.pending = base, rows, []
        self.tb = SummaryWriter(str(out / "tb"), purge_step=purge_step)

    def add(self, name: str, value: float, step: int, tokens: int) -> None:
        self.rows.append({**self.base, "step": step, "tokens": tokens, "metric": name, "value": float(value)})
        self.tb.add_scalar(name, float(value), tokens)

    def add_step(self, step: int, tokens: int, loss: torch.Tensor, grad_norm: torch.Tensor, lr: float) -> None:
        self.pending.append((step, tokens, loss, grad_norm, lr))

    def flush(self, describe: Callable[[int], dict]) -> None:
        """Training steps since the last flush, then the scheduler's state (`describe`) at the last of them."""
        if not self.pending:
            return
        losses = torch.stack([p[2] for p in self.pending]).tolist()  # one sync for all the steps
        norms = torch.stack([p[3] for p in self.pending]).tolist()
        for (s, tk, _, _, lr), loss, gn in zip(self.pending, losses, norms):
            self.add("train_loss", loss, s, tk)
            self.add("grad_norm", gn, s, tk)
            self.add("lr", lr, s, tk)
        s, tk = self.pending[-1][:2]
        for k, v in describe(s).items():
            self.add(k, v, s, tk)
        self.pending.clear()

    def write(self, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        pq.write_table(pa.Table.from_pylist(self.rows), tmp, compression="zstd")
        os.replace(tmp, path)


def save_checkpoint(path: Path, model: Transformer, opt: torch.optim.Optimizer, step: int, tokens: int, seed: int,
                    total_steps: int, fingerprint: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "model_config": model.cfg.to_dict(),
                "scheduler": {"step": step, "seed": seed, "total_steps": total_steps}, "tokens": tokens,
                "fingerprint": fingerprint}, tmp)
    os.replace(tmp, path)


def save_snapshot(path: Path, model: Transformer, step: int, tokens: int) -> None:
    """The model alone at `step` (`[probe] probe_every`: the probes' learning curve reads these)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save({"model": model.state_dict(), "model_config": model.cfg.to_dict(), "tokens": tokens,
                "scheduler": {"step": step}}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, model: Transformer, opt: torch.optim.Optimizer, fingerprint: str) -> tuple[int, int]:
    """Restore model and optimizer; returns (step, tokens)."""
    ck = torch.load(path, map_location=next(model.parameters()).device, weights_only=False)
    if ck["fingerprint"] != fingerprint:
        raise TrainError(f"{path.parent}: holds a run with other settings; remove the folder or change the experiment's `out`")
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    return ck["scheduler"]["step"], ck["tokens"]


def train_run(exp: Experiment, curriculum: str | None = None, seed: int | None = None, *, threads: int | None = None,
              prep: Prepared | None = None, progress: Callable[[int, int], None] | None = None,
              stop_at_step: int | None = None, log: Callable[[str], None] = lambda s: None) -> dict:
    """Train one (curriculum, seed) run, resuming from its checkpoint if there is one.

    `threads`: the run's torch threads in all (default `[train] threads`, else every core); with
    `[train] processes` > 1 they are shared among the processes (data parallel: this process is
    rank 0, the others are started here and only step).
    `stop_at_step` ends the run early without evaluation or checkpoint at that step, as a crash
    would: a re-run resumes from the last checkpoint.
    Returns a summary: final and best validation loss, steps, tokens, tokens/s, the run folder.
    """
    # ---- set-up
    cur = exp.curriculum(curriculum)
    seed = exp.seeds[0] if seed is None else seed
    cfg = exp.train
    threads = threads or cfg.threads or available_cores()
    set_up_process(threads)
    device = resolve_device(cfg.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # what is not under bf16 autocast: TF32 matmuls
    prep = prep or prepare_experiment(exp)
    out = run_dir(exp, cur.name, seed)
    out.mkdir(parents=True, exist_ok=True)
    fp = run_fingerprint(exp, cur, seed, prep.fingerprint)
    if (done := finished(out, fp)) is not None:
        return done
    mcfg, total_steps, data, model, opt = new_run(exp, cur, seed, prep, device)
    step = tokens = 0
    rows = []
    if (out / CHECKPOINT).exists():
        step, tokens = load_checkpoint(out / CHECKPOINT, model, opt, fp)
        rows = [r for r in pq.read_table(out / METRICS).to_pylist() if r["step"] <= step]  # written before that checkpoint
        log(f"{cur.name} seed {seed}: resuming at step {step}/{total_steps}")
    compile = use_compile(cfg, device, model.flops_per_token() * cfg.tokens, log)
    world = data_parallel(cfg, device, model.flops_per_token(), threads)
    end = total_steps if stop_at_step is None else min(total_steps, stop_at_step)
    (out / "tokenizer.json").write_bytes(prep.tokenizer_path.read_bytes())
    (out / "config.json").write_text(json.dumps({"experiment": exp.name, "curriculum": cur.model_dump(), "seed": seed,
                                                 "model": mcfg.to_dict(), "train": cfg.model_dump(), "total_steps": total_steps,
                                                 "params": model.num_params(), "fingerprint": fp}, indent=2) + "\n")
    heldout = held_out(prep, cfg, list(data.pools))
    eval_batch = max(32, cfg.batch_size)
    loss_fn = training_loss(model, compile)
    metrics = MetricLog(out, {"curriculum": cur.name, "seed": seed}, rows, purge_step=step or None)
    group = None
    if world > 1:  # ranks 1.. build the same run from the same checkpoint; they only step
        rank_threads = max(1, threads // world)
        torch.set_num_threads(rank_threads)
        try:
            group = parallel.start(world, _follow, (exp.model_dump(mode="json"), cur.name, seed, str(prep.dir),
                                                    rank_threads, compile, end))
        except parallel.ParallelError as e:
            metrics.tb.close()
            raise TrainError(f"{out}: {e}") from None
        log(f"{cur.name} seed {seed}: data parallel over {world} processes, {rank_threads} thread(s) each")
    batches = prefetch(parallel.share(data.batch, group), range(step, end), device)
    ckpt_every = cfg.checkpoint_every or cfg.eval_every
    probe_every = exp.probe.probe_every if exp.probe.enabled else 0
    # tokens/s is timed from after the first step (compilation, warm-up), without evaluations and checkpoints
    start, timed_from, side, trained = step, None, 0.0, False
    model.train()

    # ---- the loop: `step` steps are done
    try:
        while step != stop_at_step:
            last = step == total_steps
            evaluate = (step % cfg.eval_every == 0 or last) and (step > start or step == 0)
            checkpoint = (step % ckpt_every == 0 or last) and step > start
            if evaluate or checkpoint:
                t_side = synchronize(device)
                metrics.flush(data.describe)
                if evaluate:
                    for name, value in heldout.metrics(model, mcfg.context, eval_batch, device, cfg.dtype).items():
                        metrics.add(name, value, step, tokens)
                metrics.write(out / METRICS)  # before the checkpoint: a checkpoint's metrics are always on disk
                if checkpoint:
                    save_checkpoint(out / CHECKPOINT, model, opt, step, tokens, seed, total_steps, fp)
                side += time.perf_counter() - t_side
            if probe_every and step % probe_every == 0 and start < step < total_steps:
                t_side = synchronize(device)
                save_snapshot(out / SNAPSHOTS / f"step{step:06d}.pt", model, step, tokens)
                side += time.perf_counter() - t_side
            if last:
                break

            lr = lr_at(step, cfg, total_steps)
            x, y, weight, batch_tokens = next(batches)  # data parallel: this rank's share of the batch
            loss, grad_norm = train_step(loss_fn, model, opt, x, y, lr, cfg, group, weight)
            step, tokens = step + 1, tokens + batch_tokens
            metrics.add_step(step, tokens, loss, grad_norm, lr)
            if timed_from is None:
                timed_from, side = (synchronize(device), tokens), 0.0
            if step % cfg.log_every == 0:
                metrics.flush(data.describe)
                if progress:
                    progress(step, total_steps)
        t_end, trained = synchronize(device), True  # the timed span ends here: closing the log and the loader is the finish's
    except parallel.ParallelError as e:  # another rank failed: one line (its own error is printed above)
        raise TrainError(f"{out}: {e}") from None
    finally:
        batches.close()
        metrics.tb.close()
        if group is not None:
            group.close(ok=trained)
            torch.set_num_threads(threads)  # the finish (samples) on every thread again

    # ---- finish
    tps = None
    if timed_from and tokens > timed_from[1]:
        tps = (tokens - timed_from[1]) / max(1e-9, t_end - timed_from[0] - side)
    summary = _summary(cur.name, seed, out, metrics.rows, model, tps)
    if step == total_steps:
        if progress:
            progress(step, total_steps)
        write_samples(model, prep, exp, out, device)
        (out / "summary.json").write_text(json.dumps({**summary, "fingerprint": fp}, indent=2) + "\n")
    return summary


def new_run(exp: Experiment, cur: CurriculumConfig, seed: int, prep: Prepared, device: torch.device):
    """What every rank of a run builds alike: (model config, steps, batch scheduler, model seeded, optimizer)."""
    cfg = exp.train
    mcfg = model_config(exp, prep.vocab_size)
    total_steps = max(1, math.ceil(cfg.tokens / (cfg.batch_size * mcfg.context)))
    data = build_scheduler(prep, cur, exp, seed, mcfg.context, total_steps)
    torch.manual_seed(seed)
    model = Transformer(mcfg).to(device)
    return mcfg, total_steps, data, model, make_optimizer(model, cfg, device)


def _follow(rank: int, world: int, port: int, exp_data: dict, curriculum: str, seed: int, prep_dir: str,
            threads: int, compile: bool, end: int) -> None:
    """Rank 1.. of a data-parallel run (a fresh process): the run as rank 0 builds it, from the same
    checkpoint, then only its share of the steps up to step `end`; rank 0 does everything else."""
    set_up_process(threads)
    group = parallel.join(rank, world, port)
    ok = False
    try:
        exp = Experiment.model_validate(exp_data)
        cur, cfg, device = exp.curriculum(curriculum), exp.train, torch.device("cpu")
        prep = load_prepared(prep_dir)
        _, total_steps, data, model, opt = new_run(exp, cur, seed, prep, device)
        step, ckpt = 0, run_dir(exp, cur.name, seed) / CHECKPOINT
        if ckpt.exists():  # rank 0 writes the next one only after a step this rank takes part in
            step, _ = load_checkpoint(ckpt, model, opt, run_fingerprint(exp, cur, seed, prep.fingerprint))
        loss_fn = training_loss(model, compile)
        model.train()
        for s, (x, y, weight, _) in zip(range(step, end), prefetch(parallel.share(data.batch, group), range(step, end), device)):
            train_step(loss_fn, model, opt, x, y, lr_at(s, cfg, total_steps), cfg, group, weight)
        ok = True
    except parallel.ParallelError:
        raise SystemExit(1) from None  # rank 0 failed or stopped: it reports why
    finally:
        group.close(ok)


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


def _summary(curriculum, seed, out, rows, model, tps) -> dict:
    val = [(r["tokens"], r["value"]) for r in rows if r["metric"] == "val_loss"]
    return {"curriculum": curriculum, "seed": seed, "run": str(out), "params": model.num_params(),
            "steps": max((r["step"] for r in rows), default=0), "tokens": max((r["tokens"] for r in rows), default=0),
            "final_val_loss": val[-1][1] if val else None, "best_val_loss": min(v for _, v in val) if val else None,
            "tokens_per_s": tps}


def write_samples(model, prep: Prepared, exp: Experiment, out: Path, device) -> list[dict]:
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
    split, the run's step function) and return a function giving each document's mean loss under
    it, by source name."""
    cfg = exp.train
    set_up_process(cfg.threads)
    device = resolve_device(cfg.device)
    mcfg = model_config(exp, prep.vocab_size, preset_name=exp.reference.preset)
    mcfg = replace(mcfg, context=min(mcfg.context, exp.train.context or mcfg.context))
    total = max(1, math.ceil(exp.reference.tokens / (cfg.batch_size * mcfg.context)))
    data = build_scheduler(prep, CurriculumConfig(name="reference"), exp, 0, mcfg.context, total)
    torch.manual_seed(0)
    model = Transformer(mcfg).to(device)
    opt = make_optimizer(model, cfg, device)
    for step, (x, y) in enumerate(prefetch(data.batch, range(total), device)):
        train_step(model.loss, model, opt, x, y, lr_at(step, cfg, total), cfg)

    def doc_loss(source: str) -> np.ndarray:
        s, c = doc_losses(model, prep.sources[source].docs, prep.eot, mcfg.context, max(32, cfg.batch_size), device, cfg.dtype)
        return s / np.maximum(c, 1)

    return doc_loss


def prepare_experiment(exp: Experiment, log: Callable[[str], None] = lambda s: None) -> Prepared:
    """trainers.prepare.prepare with this trainer's reference model for the model_loss scorer."""
    return prepare(exp, log, reference=reference_doc_loss)
