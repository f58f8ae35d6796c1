"""What this process may run on."""
from __future__ import annotations

import os


def available_cores() -> int:
    """The cores this process may run on: its CPU affinity (`taskset`, a container's cpuset), not
    every core of the machine; os.cpu_count() where there is no affinity (not Linux)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)
