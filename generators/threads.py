"""How many torch threads a CPU generation process should use.

Torch's default (one thread per core) oversubscribes the machine as soon as a second process does the
same: two processes with 2 threads each on 2 cores spin-wait on each other and each slows 10-20x, not
2x. So every process that runs the embedded model registers itself (a pid file under
`<cache>/workers/`), and its thread count is the cores it may run on (`os.sched_getaffinity`) divided
by the live registered processes, and no more than the cores the rest of the machine leaves idle
(the 1-minute load average less our own threads), at least 1; it is recomputed before every batch,
so a process that starts or ends re-balances the others. `TINYSCHOOL_THREADS` or the backend's `threads` option fixes it.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WorkerRegistry:
    """Pid files of the processes that run a CPU model right now (stale ones are removed on sight)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.me = self.root / f"{os.getpid()}.pid"

    def register(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.me.write_text(str(os.getpid()))

    def unregister(self) -> None:
        with contextlib.suppress(OSError):
            self.me.unlink()

    def live(self) -> int:
        n = 0
        for p in self.root.glob("*.pid"):
            try:
                pid = int(p.stem)
            except ValueError:
                continue
            if pid == os.getpid() or _alive(pid):
                n += 1
            else:
                with contextlib.suppress(OSError):
                    p.unlink()
        return max(1, n)


def threads_for(cores: int, workers: int, fixed: int | None = None, others_load: float | None = None) -> int:
    """Threads for one of `workers` processes sharing `cores` cores (or `fixed` when set). With
    `others_load` (runnable threads of everything else on the machine, from the load average), no
    more than the cores left idle by them, at least 1."""
    if fixed:
        return max(1, int(fixed))
    n = max(1, cores // max(1, workers))
    if others_load is not None:
        n = min(n, max(1, int(cores - others_load + 0.5)))
    return n


def others_load(own_threads: int) -> float | None:
    """The 1-minute load average less this process's own threads (None where there is none)."""
    try:
        return max(0.0, os.getloadavg()[0] - own_threads)
    except (AttributeError, OSError):
        return None


def fixed_threads(option: int | None) -> int | None:
    env = os.environ.get("TINYSCHOOL_THREADS")
    if option:
        return int(option)
    return int(env) if env and env.isdigit() and int(env) > 0 else None
