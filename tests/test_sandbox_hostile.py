"""The hostile suite: every program in tests/hostile/ is contained, one-shot and pooled, and the host
is unaffected (canary intact, nothing created outside the temp dir, the worker and this process alive,
no process left behind, no temp dir left behind)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from filters.sandbox import Limits, SandboxPool, SandboxWorker

pytestmark = pytest.mark.serial  # run alone (scripts/test.sh): wall-clock limits of 1.5 s, and checks of /tmp and of the processes left behind

HOSTILE = Path(__file__).with_name("hostile")
PROGRAMS = sorted(HOSTILE.glob("*.py"))
REPO = Path(__file__).resolve().parents[1]
LIMITS = Limits(wall_s=1.5, cpu_s=1.0, memory_mb=256)
CANARY_TEXT = "the host's file, untouched\n"
SECRET = "tinyschool-test-secret-5f1e"


def header(path: Path, key: str) -> list[str]:
    m = re.search(rf"^# {key}: (.+)$", path.read_text(), re.M)
    return m.group(1).split() if m else []


def render(path: Path, canary: Path) -> str:
    return (path.read_text().replace("{{CANARY}}", str(canary)).replace("{{CANARY_DIR}}", str(canary.parent))
            .replace("{{HOST_PID}}", str(os.getpid())).replace("{{REPO}}", str(REPO)))


def session_members(sid: int) -> list[int]:
    pids = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == sid:  # state ppid pgrp session
            pids.append(int(p.name))
    return pids


def sandbox_dirs() -> set[str]:
    return {p.name for p in Path("/tmp").glob("tinyschool-sbx-*")}


@pytest.fixture
def canary(tmp_path):
    d = tmp_path / "host"
    d.mkdir()
    d.chmod(0o777)  # writable by anyone: only the sandbox itself stands between a program and the canary
    c = d / "canary.txt"
    c.write_text(CANARY_TEXT)
    c.chmod(0o666)
    return c


@pytest.fixture(autouse=True)
def secret_in_env(monkeypatch):
    monkeypatch.setenv("TINYSCHOOL_SECRET_TOKEN", SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)


def check_result(prog: Path, res) -> None:
    expect = header(prog, "expect")
    assert expect, f"{prog.name} has no '# expect:' line"
    assert res.status in expect, f"{prog.name}: status {res.status} ({res.error}), expected one of {expect}"
    checks = header(prog, "check")
    if "no_secret" in checks:
        assert res.value and "PATH" in res.value  # the program did read its environment...
        assert SECRET not in res.value and "OPENAI" not in res.value  # ...and it holds no secret
    if "value_capped" in checks:
        assert res.value is not None and len(res.value) <= 200


def check_host(canary: Path, dirs_before: set[str]) -> None:
    assert canary.read_text() == CANARY_TEXT
    assert sorted(p.name for p in canary.parent.iterdir()) == ["canary.txt"]
    assert not Path("/dev/shm/tinyschool-pwned").exists()
    assert sandbox_dirs() <= dirs_before, "a sandbox temp dir was left behind"


def test_suite_is_big_enough():
    assert len(PROGRAMS) >= 30
    kinds = {p.stem for p in PROGRAMS}
    for needed in ("infinite_loop", "fork_bomb", "memory_bomb", "deep_recursion", "write_canary", "delete_canary",
                   "read_passwd", "read_env", "socket_connect", "subprocess_run", "ctypes_import", "os_system",
                   "import_tinyschool", "import_corpora", "huge_output", "ignore_signals_sleep", "kill_parent"):
        assert needed in kinds


@pytest.mark.slow
@pytest.mark.parametrize("prog", PROGRAMS, ids=lambda p: p.stem)
def test_hostile_one_shot(prog, canary):
    dirs_before = sandbox_dirs()
    w = SandboxWorker()
    try:
        res = w.run(render(prog, canary), LIMITS)
        assert w.proc.poll() is None, "the worker (the program's parent) died"
    finally:
        w.close()
    check_result(prog, res)
    check_host(canary, dirs_before)
    assert session_members(w.pid) == [], "a process of the sandbox outlived it"


@pytest.mark.slow
def test_hostile_pooled(canary):
    dirs_before = sandbox_dirs()
    # run each program twice, interleaved, so that every worker sees hostile programs back to back
    progs = PROGRAMS + PROGRAMS[::-1]
    benign = "def solution():\n    apples = 6\n    return apples * 7\n"
    codes = []
    for p in progs:
        codes += [render(p, canary), benign]
    with SandboxPool(size=2, limits=LIMITS, recycle_after=50) as pool:
        results = pool.map(codes)
        pids = pool.worker_pids
        limit_hits = sum(r.limit_hit for r in results)
        assert pool.recycled >= limit_hits
    for i, p in enumerate(progs):
        check_result(p, results[2 * i])
        ok = results[2 * i + 1]
        assert ok.status == "ok" and ok.number == 42.0, f"benign program after {p.name}: {ok}"
    check_host(canary, dirs_before)
    for pid in pids:
        assert session_members(pid) == []
