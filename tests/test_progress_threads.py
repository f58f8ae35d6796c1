"""Issue 15.6: progress lines when the output is not a terminal (a fake clock, no sleeping), and torch
threads from the cores available and the other processes running a model."""
import os
import subprocess
import sys

from conftest import REPO
from generators.threads import WorkerRegistry, threads_for
from tinyschool.ui import LineProgress


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_line_progress_every_interval_with_rate_and_eta():
    clock, lines = Clock(), []
    p = LineProgress(30, clock=clock, write=lines.append, thread=False)
    task = p.add_task("generate", total=80)
    clock.t += 29
    p.tick()
    assert lines == []  # not yet 30 s
    clock.t += 1
    p.tick()  # nothing advanced in 30 s: a line all the same
    assert lines == ["generate: 0/80 (0%), 0.00/s, elapsed 30s, ETA ?"]
    p.advance(task, 16)
    clock.t += 30
    p.tick()
    assert lines[-1] == "generate: 16/80 (20%), 0.27/s, elapsed 1m00s, ETA 4m00s"
    clock.t += 10
    p.tick()
    assert len(lines) == 2
    p.update(task, completed=80)  # done: one last line at once
    assert lines[-1].startswith("generate: 80/80 (100%)") and "ETA" not in lines[-1]
    clock.t += 100
    p.tick()
    assert len(lines) == 3


def test_progress_lines_from_a_real_piped_process():
    code = ("import time\nfrom tinyschool.ui import progress_bar\n"
            "with progress_bar() as p:\n t = p.add_task('work', total=3)\n"
            " for _ in range(3):\n  time.sleep(0.4)\n  p.advance(t)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "TINYSCHOOL_PROGRESS_INTERVAL": "0.3"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("work:")]
    assert len(lines) >= 2 and lines[-1].startswith("work: 3/3 (100%)")


def test_threads_share_the_cores(tmp_path):
    assert threads_for(2, 1) == 2 and threads_for(2, 2) == 1 and threads_for(16, 3) == 5 and threads_for(1, 4) == 1
    assert threads_for(8, 2, fixed=3) == 3
    assert threads_for(2, 1, others_load=0.2) == 2 and threads_for(2, 1, others_load=1.0) == 1
    assert threads_for(16, 2, others_load=12.0) == 4 and threads_for(2, 1, others_load=17.0) == 1
    reg = WorkerRegistry(tmp_path / "workers")
    reg.register()
    assert reg.live() == 1
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "workers" / f"{other.pid}.pid").write_text(str(other.pid))
        assert reg.live() == 2
    finally:
        other.kill()
        other.wait()
    assert reg.live() == 1  # a dead process's file is removed on sight
    assert not (tmp_path / "workers" / f"{other.pid}.pid").exists()
    reg.unregister()
    assert reg.live() == 1  # never below one
