"""Issue 13.9: dependencies' warnings do not reach the user's terminal, unless the user asks for them."""
import os
import subprocess
import sys

from conftest import REPO

PROBE = r"""
import os, subprocess, sys, warnings
from tinyschool.quiet import quiet_dependencies
print("quiet", quiet_dependencies())
warnings.warn("`past_key_values` is deprecated", FutureWarning)
warnings.warn("old API", DeprecationWarning)
subprocess.run([sys.executable, "-c", "import warnings; warnings.warn('child says deprecated', FutureWarning)"])
"""


def _run(env=None, flags=()):
    e = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "TINYSCHOOL_WARNINGS")}
    e.update(env or {})
    return subprocess.run([sys.executable, *flags, "-c", PROBE], cwd=REPO, env=e, capture_output=True, text=True, timeout=60)


def test_dependency_warnings_are_silenced_in_this_process_and_its_children():
    r = _run()
    assert r.returncode == 0 and "quiet True" in r.stdout, r.stderr
    assert r.stderr == ""


def test_the_user_can_still_ask_for_them():
    r = _run(env={"TINYSCHOOL_WARNINGS": "1"})
    assert "quiet False" in r.stdout and "past_key_values" in r.stderr and "child says deprecated" in r.stderr
    r = _run(flags=("-W", "default"))
    assert "quiet False" in r.stdout and "old API" in r.stderr
