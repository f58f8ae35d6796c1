"""The sandbox's ordinary behaviour: values, exceptions, isolation between solutions of one worker,
recycling, temp dirs, and the isolation the host provides (real subprocesses throughout)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from filters.sandbox import Limits, SandboxPool, isolation_info, run_solution

pytestmark = pytest.mark.serial  # run alone (scripts/test.sh): wall-clock limits of 0.5-1.5 s, and a check that no sandbox folder is left in /tmp

FAST = Limits(wall_s=1.5, cpu_s=1.0, memory_mb=256)


def sbx_dirs() -> set[str]:
    return {p.name for p in Path("/tmp").glob("tinyschool-sbx-*")}


def test_returns_numbers_of_every_kind():
    code = """
from fractions import Fraction
from decimal import Decimal
import math

def solution():
    apples = 7
    pears = Fraction(1, 4)
    price = Decimal("2.5")
    return float(apples * pears) * float(price) + math.sqrt(16)
"""
    r = run_solution(code, FAST)
    assert r.status == "ok"
    assert r.number == pytest.approx(7 * 0.25 * 2.5 + 4)
    assert r.value_type == "float"
    assert r.runtime_s >= 0 and r.wall_s >= r.runtime_s


def test_non_numbers_are_reported_not_converted():
    with SandboxPool(size=1, limits=FAST) as pool:
        got = pool.map([
            "def solution():\n    return True\n",
            "def solution():\n    return 'forty-two'\n",
            "def solution():\n    return None\n",
            "def solution():\n    return float('nan')\n",
            "def solution():\n    return 10 ** 400\n",
        ])
    assert [r.status for r in got] == ["ok"] * 5
    assert got[0].number is None and got[0].value_type == "bool"
    assert got[1].number is None and got[1].value == "'forty-two'"
    assert got[2].number is None and got[2].value_type == "NoneType"
    assert got[3].number != got[3].number  # NaN comes back as NaN (the verifier rejects it)
    assert got[4].number is None and got[4].value_type == "int"  # too big for a float


def test_exceptions_syntax_and_missing_solution():
    with SandboxPool(size=1, limits=FAST) as pool:
        exc, syn, missing, printed = pool.map([
            "def solution():\n    cakes = 3\n    return cakes / 0\n",
            "def solution(:\n    return 1\n",
            "answer = 3\n",
            "def solution():\n    print('thinking...')\n    return 2\n",
        ])
    assert exc.status == "exception" and exc.error.startswith("ZeroDivisionError")
    assert syn.status == "syntax" and "line 1" in syn.error
    assert missing.status == "no_solution"
    assert printed.status == "ok" and printed.number == 2 and printed.stdout == "thinking...\n"


def test_each_solution_gets_fresh_globals_modules_and_temp_dir():
    """One worker, solutions back to back: nothing one does is seen by the next."""
    tamper = """
import builtins, math
math.pi = 3
builtins.LEFTOVER = 1
open("note.txt", "w").write("from an earlier solution")
def solution():
    return 1
"""
    probe = """
import builtins, math, os
def solution():
    assert not hasattr(builtins, "LEFTOVER")
    assert os.listdir(".") == []
    return math.pi
"""
    before = sbx_dirs()
    with SandboxPool(size=1, limits=FAST, recycle_after=100) as pool:
        a, b = pool.map([tamper, probe])
        assert len(pool.worker_pids) == 1  # the same warm worker ran both
    assert a.status == "ok" and b.status == "ok", (a, b)
    assert b.number == pytest.approx(3.141592653589793)
    assert sbx_dirs() <= before


def test_pool_recycles_after_limit_and_every_n():
    with SandboxPool(size=1, limits=FAST, recycle_after=3) as pool:
        ok = "def solution():\n    return 1\n"
        pool.map([ok] * 3)
        assert pool.recycled == 1 and len(pool.worker_pids) == 1
        r = pool.run("def solution():\n    x = bytearray(10 ** 10)\n")
        assert r.status == "memory"
        assert pool.recycled == 2
        assert pool.run(ok).number == 1
        assert len(pool.worker_pids) == 3  # 3 solutions, the memory bomb, one more: three workers


def test_child_runs_as_nobody_without_network_when_root():
    info = isolation_info()
    code = "import os\ndef solution():\n    return os.getuid()\n"
    r = run_solution(code, FAST)
    if os.geteuid() == 0:
        assert info["drops_to_nobody"] and r.number == 65534
    else:
        assert r.number == os.geteuid()


def test_wall_limit_is_honoured_for_a_sleeper():
    r = run_solution("import time\ndef solution():\n    time.sleep(30)\n", Limits(wall_s=0.5, cpu_s=1.0))
    assert r.status == "timeout"
    assert r.wall_s < 5
