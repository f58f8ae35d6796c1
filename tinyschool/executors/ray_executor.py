"""The `ray` executor: a stage's tasks on a Ray cluster (joined at `address`, or a local Ray
started for the run and stopped after it). One Ray task per input, at most `num_workers` in
flight; Ray re-runs a task whose worker died (`max_retries`). Every task function is idempotent
(atomic writes, the same bytes on a re-run), so a retried task leaves a complete store without
duplicates. Tasks read and write the corpus folder, so on a cluster of several machines it must
be a shared file system.
"""
from __future__ import annotations

import contextlib
import math
import socket
from typing import Any, Callable, Iterable, Iterator

from tinyschool.executors import ExecutorConfig, ExecutorError, shuffle_partitions


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ExecutorError("executor kind 'ray' needs Ray, which is not installed: pip install 'tinyschool[ray]'") from None
    return ray


def _call(fn: Callable[[Any], Any], x: Any) -> Any:
    """The one Ray task: any task function (a `functools.partial` too) on one input."""
    return fn(x)


def _reachable(address: str, timeout: float = 10.0) -> None:
    """Fail fast on a host:port nobody listens on (Ray itself retries for minutes)."""
    hostport = address.removeprefix("ray://")
    if address == "auto" or ":" not in hostport:
        return
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except (OSError, ValueError) as e:
        raise ConnectionError(f"nothing answers ({e})") from None


class RayExecutor:
    local = False

    def __init__(self, cfg: ExecutorConfig | None = None):
        self.cfg = cfg or ExecutorConfig(kind="ray")
        self.ray = _import_ray()

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Use the Ray this process is connected to, or connect/start one for the run (and stop it after)."""
        ray = self.ray
        if ray.is_initialized():
            yield
            return
        c = self.cfg
        try:
            if c.address:
                _reachable(c.address)
                ray.init(address=c.address, log_to_driver=False)
            else:
                ray.init(num_cpus=math.ceil(c.num_workers * c.num_cpus), include_dashboard=False, log_to_driver=False,
                         object_store_memory=c.object_store_mb * 2**20 if c.object_store_mb else None)
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = f"at {c.address}" if c.address else "locally"
            raise ExecutorError(f"executor: cannot start or reach Ray {where}: {str(e).splitlines()[0] if str(e) else e}") from None
        try:
            yield
        finally:
            ray.shutdown()

    def partitions(self, docs: int) -> int:
        return shuffle_partitions(self.cfg, docs)

    def map(self, fn: Callable[[Any], Any], inputs: Iterable[Any], *, processes: int | None = None,
            setup: Callable[[], Any] | None = None, gpus: bool = False, spawn: bool = False) -> Iterator[Any]:
        """One Ray task per input, results as they complete. `processes`, `setup` and `spawn` are for the
        local executor (a task warms its own worker's state); `gpus`: `num_gpus` per task."""
        c = self.cfg
        opts: dict[str, Any] = {"num_cpus": c.num_cpus, "max_retries": c.max_retries}
        if c.memory_gb:
            opts["memory"] = int(c.memory_gb * 2**30)
        if gpus and c.num_gpus:
            opts["num_gpus"] = c.num_gpus
        with self.session():
            remote = self.ray.remote(_call).options(**opts)
            fn_ref = self.ray.put(fn)  # sent once, not with every task
            pending = iter(inputs)
            flight: list = []
            try:
                while True:
                    while len(flight) < c.num_workers:
                        x = next(pending, _END)
                        if x is _END:
                            break
                        flight.append(remote.remote(fn_ref, x))
                    if not flight:
                        return
                    done, flight = self.ray.wait(flight, num_returns=1)
                    for ref in done:
                        yield self._get(ref)
            finally:
                for ref in flight:
                    with contextlib.suppress(Exception):
                        self.ray.cancel(ref)

    def _get(self, ref):
        """`ray.get`, with a task's own exception re-raised as itself (one clear line, as on one
        machine) and a task that died more often than `max_retries` allows as an ExecutorError."""
        exc = self.ray.exceptions
        try:
            return self.ray.get(ref)
        except exc.RayTaskError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None
            raise
        except (exc.WorkerCrashedError, exc.NodeDiedError, exc.ObjectLostError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ExecutorError(f"executor: a Ray task failed {self.cfg.max_retries + 1} times ({type(e).__name__}: {first})") from None


_END = object()
