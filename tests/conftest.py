import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
GSM8K = SHARED / "data" / "gsm8k" / "train.jsonl"


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
