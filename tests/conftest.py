import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
GSM8K = SHARED / "data" / "gsm8k" / "train.jsonl"


def _pin_test_worker() -> None:
    """Under pytest-xdist (scripts/test.sh), each test process and everything it starts runs on its own
    share of the cores: two processes with 2 torch threads each on 2 cores spin-wait on each other
    and slow 5-20x (the constrained-generation test: 14 s alone, 66 s beside another worker). The
    tool reads the affinity (corpora.machine.available_cores), so each worker is a machine of its share."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER", ""), os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if not (worker.startswith("gw") and count.isdigit() and hasattr(os, "sched_setaffinity")):
        return
    cores = sorted(os.sched_getaffinity(0))
    n, i = int(count), int(worker[2:])
    if n > 1 and len(cores) >= n:
        os.sched_setaffinity(0, cores[i % n::n])


_pin_test_worker()


@pytest.fixture(autouse=True)
def _isolated_request_cache(tmp_path, monkeypatch):
    """Each test gets its own request cache, so no test answers from another's."""
    monkeypatch.setenv("TINYSCHOOL_REQUEST_CACHE", str(tmp_path / "requests.sqlite"))


@pytest.fixture(scope="session")
def local_backend():
    from generators.local import LocalBackend

    b = LocalBackend(batch_size=4)
    b._ensure()
    return b


def run_cli(*args, cwd=None, env=None, timeout=600):
    """Run the real `tinyschool` command in a subprocess."""
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "tinyschool", *map(str, args)], cwd=cwd or REPO, env=e,
                          capture_output=True, text=True, timeout=timeout)


def run_report_queries(report: str) -> list[str]:
    """Run every `python -c` DuckDB query a report suggests, as a reader would paste it into a shell
    (only what the install brings: no duckdb command-line tool); returns their outputs."""
    cmds = [line for line in report.splitlines() if line.startswith("python -c")]
    assert cmds, "the report suggests no query"
    outs = []
    for cmd in cmds:
        r = subprocess.run(["bash", "-c", cmd.replace("python", sys.executable, 1)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, (cmd, r.stderr)
        outs.append(r.stdout)
    return outs


def write_recipe(path: Path, body: str) -> Path:
    path.write_text(body)
    return path


TINY_RECIPE = """
name = "tiny"
template = "tinystories"
vocabulary = "default"
count = {count}
seed = 5
shard_size = {shard_size}
out = "{out}"

[sampling]
temperature = 0.8
max_tokens = {max_tokens}
repetition_penalty = 1.1

[backend]
name = "local"
batch_size = 4
"""
