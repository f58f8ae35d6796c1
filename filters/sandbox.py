"""Run untrusted Python solutions: one process per solution, kernel limits, an audit hook, no network.

Two ways in, one mechanism:
    run_solution(code)            a fresh worker for this one solution (one-shot)
    SandboxPool(size).map(codes)  warm workers, recycled after any limit hit or every N solutions

Either way the work happens in `filters/sandbox_worker.py`: a stdlib-only interpreter started
with `python -I -S` (no site-packages, no project on sys.path), an empty environment, its own
session (process group) and, where the host allows it, its own empty network namespace
(`unshare --net`). For each solution it forks a child that sets RLIMIT_CPU / RLIMIT_AS /
RLIMIT_FSIZE / RLIMIT_NPROC=0 / RLIMIT_NOFILE, drops to `nobody` when the worker is root, chdirs
into a fresh temporary directory (removed afterwards), installs a PEP 578 audit hook, caps
stdout/stderr, then runs the code in fresh globals and calls `solution()`. The worker SIGKILLs the
child at the wall-clock limit; the host SIGKILLs the worker's whole process group if the worker
itself does not answer in time. See the worker's docstring for the full list.

A result's `status` is one of:
    ok           returned a value (`number` is set when it is a real number)
    exception    raised an exception (`error` says which)
    syntax       the code does not compile
    no_solution  the code defines no `solution()`
    timeout      wall-clock limit (killed)
    cpu          CPU time limit (killed by the kernel)
    memory       memory limit (MemoryError)
    output       stdout/stderr over the cap
    blocked      the audit hook refused an action (process, socket, file outside the temp dir...)
    crash        the process died without a result (e.g. SIGSEGV from a C stack overflow)
"""
from __future__ import annotations

import json
import os
import queue
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable

from corpora.machine import available_cores

WORKER_FILE = Path(__file__).with_name("sandbox_worker.py")
LIMIT_STATUSES = frozenset({"timeout", "cpu", "memory", "output", "blocked", "crash"})
STATUSES = ("ok", "exception", "syntax", "no_solution", *sorted(LIMIT_STATUSES))
CLEAN_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/nonexistent"}


class SandboxError(RuntimeError):
    """The sandbox itself cannot run (worker failed to start)."""


@dataclass(frozen=True)
class Limits:
    wall_s: float = 2.0  # wall clock, enforced by SIGKILL
    cpu_s: float = 1.0  # CPU seconds (RLIMIT_CPU; rounded up to whole seconds by the kernel)
    memory_mb: int = 256  # address space (RLIMIT_AS)
    output_bytes: int = 65536  # characters written to stdout + stderr
    file_bytes: int = 1 << 20  # largest file the program may write in its temp dir (RLIMIT_FSIZE)

    def as_job(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SandboxResult:
    status: str
    number: float | None = None
    value: str | None = None
    exact: str | None = None  # exact text of a rational answer: "n" for an int, "n/d" for a Fraction
    too_large: bool = False  # a finite rational beyond the float range (number is None)
    value_type: str | None = None
    error: str | None = None
    runtime_s: float = 0.0  # time inside the solution (or until killed)
    wall_s: float = 0.0  # fork to reap, as seen by the worker
    cpu_s: float = 0.0
    stdout: str = ""
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def limit_hit(self) -> bool:
        return self.status in LIMIT_STATUSES

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SandboxResult":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d and d[k] is not None}
        return cls(**known)


@lru_cache(maxsize=1)
def _worker_source() -> str:
    return WORKER_FILE.read_text()


@lru_cache(maxsize=1)
def network_namespace_prefix() -> tuple[str, ...]:
    """`unshare --net --` when this host lets us give the worker an empty network namespace."""
    exe = shutil.which("unshare")
    if exe is None or os.geteuid() != 0:
        return ()
    try:
        ok = subprocess.run([exe, "--net", "--", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return (exe, "--net", "--") if ok else ()


def isolation_info() -> dict[str, Any]:
    """What this host gives the sandbox (for the summary table and the README)."""
    return {
        "network_namespace": bool(network_namespace_prefix()),
        "drops_to_nobody": os.geteuid() == 0,
        "audit_hook": True,
        "rlimits": "CPU, AS, FSIZE, NPROC=0, NOFILE, CORE",
    }


def _kill_group(pid: int) -> None:
    for send in (os.killpg, os.kill):
        try:
            send(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class SandboxWorker:
    """One warm worker process (its own session); runs one job at a time."""

    def __init__(self) -> None:
        prefix = network_namespace_prefix()
        env = dict(CLEAN_ENV)
        if prefix:
            env["TINYSCHOOL_SBX_NETNS"] = "1"
        self._stderr = tempfile.TemporaryFile()
        argv = [*prefix, sys.executable, "-I", "-S", "-c", _worker_source()]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                     env=env, cwd="/", start_new_session=True, close_fds=True)
        self.pid = self.proc.pid
        self.jobs = 0
        self.alive = True
        hello = self._read(timeout=30)
        if hello is None:
            err = self._stderr_text()
            self.kill()
            raise SandboxError(f"sandbox worker did not start: {err or 'no answer'}")
        self.info = hello

    def _stderr_text(self) -> str:
        try:
            self._stderr.seek(0)
            return self._stderr.read()[-2000:].decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""

    def _read_exact(self, n: int, deadline: float) -> bytes | None:
        fd = self.proc.stdout.fileno()
        buf = b""
        while len(buf) < n:
            left = deadline - _now()
            if left <= 0:
                return None
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                return None
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def _read(self, timeout: float) -> dict | None:
        deadline = _now() + timeout
        head = self._read_exact(4, deadline)
        if head is None:
            return None
        body = self._read_exact(struct.unpack(">I", head)[0], deadline)
        return None if body is None else json.loads(body)

    def run(self, code: str, limits: Limits, entry: str = "solution") -> SandboxResult:
        msg = json.dumps({"code": code, "entry": entry, "limits": limits.as_job()}).encode()
        try:
            self.proc.stdin.write(struct.pack(">I", len(msg)) + msg)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.kill()
            return SandboxResult(status="crash", error=f"sandbox worker died: {self._stderr_text()[-300:]}")
        self.jobs += 1
        # the worker kills the child at wall_s; this backstop covers a worker that stopped answering
        res = self._read(timeout=limits.wall_s + 5.0)
        if res is None:
            self.kill()
            return SandboxResult(status="timeout", error="sandbox worker did not answer in time (killed)",
                                 runtime_s=limits.wall_s, wall_s=limits.wall_s)
        return SandboxResult.from_dict(res)

    def kill(self) -> None:
        self.alive = False
        _kill_group(self.pid)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._close_files()

    def close(self) -> None:
        if not self.alive:
            return
        self.alive = False
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        _kill_group(self.pid)  # nothing of this session may outlive it
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._close_files()

    def _close_files(self) -> None:
        for f in (self.proc.stdin, self.proc.stdout, self._stderr):
            try:
                f.close()
            except (OSError, ValueError):
                pass


def _now() -> float:
    return time.monotonic()


def run_solution(code: str, limits: Limits | None = None, entry: str = "solution") -> SandboxResult:
    """Run one solution in a worker of its own (started and torn down for this call)."""
    w = SandboxWorker()
    try:
        return w.run(code, limits or Limits(), entry)
    finally:
        w.close()


class SandboxPool:
    """Warm sandbox workers. Each solution still gets its own forked child, limits and temp dir;
    a worker is replaced after any limit hit and after `recycle_after` solutions."""

    def __init__(self, size: int | None = None, limits: Limits | None = None, recycle_after: int = 200) -> None:
        self.size = max(1, size or available_cores())
        self.limits = limits or Limits()
        self.recycle_after = recycle_after
        self._idle: queue.Queue[SandboxWorker | None] = queue.Queue()
        for _ in range(self.size):
            self._idle.put(None)  # started lazily
        self._lock = threading.Lock()
        self._all: list[SandboxWorker] = []
        self.recycled = 0
        self.closed = False

    @property
    def worker_pids(self) -> list[int]:
        with self._lock:
            return [w.pid for w in self._all]

    def _spawn(self) -> SandboxWorker:
        w = SandboxWorker()
        with self._lock:
            self._all.append(w)
        return w

    def run(self, code: str, entry: str = "solution") -> SandboxResult:
        if self.closed:
            raise SandboxError("the sandbox pool is closed")
        w = self._idle.get()
        try:
            if w is None or not w.alive:
                w = self._spawn()
            res = w.run(code, self.limits, entry)
            if res.limit_hit or w.jobs >= self.recycle_after or not w.alive:
                w.close() if w.alive else None
                self.recycled += 1
                w = None
            return res
        except BaseException:
            if w is not None:
                w.kill()
            w = None
            raise
        finally:
            self._idle.put(w)

    def map(self, codes: Iterable[str], progress: Callable[[int], None] | None = None) -> list[SandboxResult]:
        codes = list(codes)
        if not codes:
            return []

        def one(code: str) -> SandboxResult:
            r = self.run(code)
            if progress is not None:
                progress(1)
            return r

        with ThreadPoolExecutor(max_workers=self.size) as ex:
            return list(ex.map(one, codes))

    def close(self) -> None:
        self.closed = True
        with self._lock:
            workers = list(self._all)
        for w in workers:
            w.close()

    def __enter__(self) -> "SandboxPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
