"""Data parallelism over a CPU's cores: one training process per core, each on its share of every
batch, the gradients averaged across them after each backward pass (gloo over 127.0.0.1), so that
every process takes the same optimizer step and the replicas stay equal bit for bit.

Why: a single process with one torch thread per core leaves its threads idle in the step's small
operations and in the optimizer; two single-thread processes keep both cores busy (7M preset on 2
cores, compiled: 1.15x the tokens/s of one process with 2 threads; README). The same reason
`ablate` runs one run per core; this is that, for a single run.

Rank 0 is the calling process and does everything but the step's share (evaluation, checkpoints,
metrics, samples); the other ranks are fresh interpreters (`spawn`: a fork of a process whose
torch already started its threads can hang) that only step.
"""
from __future__ import annotations

import multiprocessing as mp
import re
import signal
import sys
import time
from datetime import timedelta
from typing import Any, Callable

import torch
import torch.distributed as dist

JOIN_TIMEOUT = timedelta(minutes=5)  # a rank that has not joined by then (importing torch takes seconds)
STEP_TIMEOUT = timedelta(hours=1)  # the other ranks wait this long in a step while rank 0 evaluates or checkpoints


class ParallelError(Exception):
    pass


class Group:
    """The ranks of one data-parallel run, seen from one of them."""

    def __init__(self, rank: int, world: int, procs: list | None = None):
        self.rank, self.world, self.procs = rank, world, procs or []

    def average_gradients(self, params: list[torch.Tensor], loss: torch.Tensor) -> torch.Tensor:
        """Every parameter's gradient and the loss averaged over the ranks, in one all-reduce of one
        flat buffer; returns the averaged loss. Every rank receives the same bits."""
        grads = [p.grad for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads] + [loss.detach().reshape(1).float()])
        try:
            dist.all_reduce(flat)
        except Exception as e:  # a rank died or timed out: name it, not gloo's internals
            raise ParallelError(self.describe_failure(e)) from None
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset: offset + g.numel()].view_as(g))
            offset += g.numel()
        return flat[-1]

    def describe_failure(self, e: Exception) -> str:
        for p in self.procs:  # a rank that is going down has a moment to be counted
            p.join(timeout=1)
        dead = [f"rank {i + 1} ({exit_reason(p.exitcode)})" for i, p in enumerate(self.procs) if p.exitcode not in (None, 0)]
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        first = re.sub(r"\[[^\]]*\.(cc|cpp|h):\d+\]\s*", "", first)  # gloo's source position
        return f"data-parallel step failed: {', '.join(dead) or 'another rank'} stopped ({first[:160]})"

    def close(self, ok: bool = True) -> None:
        """Leave the group (after the others when `ok`; at once after a failure, which ends theirs);
        rank 0 then waits for the other ranks to exit (stopping them if they hang)."""
        if dist.is_initialized():
            if ok:
                dist.barrier()
            dist.destroy_process_group()
        for p in self.procs:
            p.join(timeout=60)
            if p.is_alive():
                p.terminate()
                p.join()


def exit_reason(code: int) -> str:
    return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"


def start(world: int, follower: Callable[..., None], args: tuple[Any, ...]) -> Group:
    """Rank 0 (this process): start ranks 1..world-1 as `follower(rank, world, port, *args)` and form
    the group with them. A rank that exits before joining ends it with one line."""
    store = dist.TCPStore("127.0.0.1", 0, world, True, timeout=JOIN_TIMEOUT, wait_for_workers=False)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=follower, args=(r, world, store.port, *args), daemon=True) for r in range(1, world)]
    for p in procs:
        p.start()
    group = Group(0, world, procs)
    began = time.monotonic()
    while not store.check([f"ready{r}" for r in range(1, world)]):  # every rank announced; none died meanwhile
        dead = [p for p in procs if not p.is_alive()]
        if dead or time.monotonic() - began > JOIN_TIMEOUT.total_seconds():
            group.close(ok=False)
            why = f"{exit_reason(dead[0].exitcode)}; its error is printed above" if dead else f"not joined after {JOIN_TIMEOUT}"
            raise ParallelError(f"data-parallel rank could not start ({why}); a script that trains must run its "
                                'code under `if __name__ == "__main__":` (the ranks import it), or set [train] processes = 1')
        time.sleep(0.1)
    hook = sys.excepthook
    dist.init_process_group("gloo", store=store, rank=0, world_size=world, timeout=STEP_TIMEOUT)
    sys.excepthook = hook  # torch wraps it to prefix "[rank0]: " to every line, once more each run in this process
    return group


def join(rank: int, world: int, port: int) -> Group:
    """Ranks 1..world-1: join the group rank 0 formed."""
    store = dist.TCPStore("127.0.0.1", port, world, False, timeout=JOIN_TIMEOUT)
    store.set(f"ready{rank}", "1")
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world, timeout=STEP_TIMEOUT)
    return Group(rank, world)


def share(batch: Callable[[int], tuple[torch.Tensor, torch.Tensor]], group: Group | None
          ) -> Callable[[int], tuple[torch.Tensor, torch.Tensor, float, int]]:
    """`batch` cut to this rank's rows (as even as the rows allow): (inputs, targets, weight, tokens
    of the whole batch). The weight makes the average over ranks of each share's mean loss the whole
    batch's mean loss; it is 1.0 when the rows divide evenly, and in a single process."""
    def cut(step: int) -> tuple[torch.Tensor, torch.Tensor, float, int]:
        x, y = batch(step)
        if group is None:
            return x, y, 1.0, x.numel()
        bounds = [len(x) * r // group.world for r in range(group.world + 1)]
        lo, hi = bounds[group.rank], bounds[group.rank + 1]
        return x[lo:hi].contiguous(), y[lo:hi].contiguous(), (hi - lo) * group.world / len(x), x.numel()
    return cut
