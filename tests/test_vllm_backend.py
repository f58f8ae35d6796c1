"""Issue 3.3: the in-process vLLM backend.

Without vLLM or without a CUDA GPU, choosing it is one clear error naming what is missing, and no
other backend ever imports vLLM. With both (and a local model folder in TINYSCHOOL_VLLM_MODEL: tests
never download), it generates a small batch: per-request seeds, the record fields, guided JSON.
"""
import importlib.util
import os
import subprocess
import sys

import pytest

from conftest import REPO
from generators.base import BackendError, Request, Sampling
from generators.registry import make_backend


def _has_vllm():
    return importlib.util.find_spec("vllm") is not None


def _has_gpu():
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def test_missing_vllm_or_gpu_is_a_clear_error():
    if _has_vllm() and _has_gpu():
        pytest.skip("vLLM and a GPU are present: test_vllm_generates runs instead")
    with pytest.raises(BackendError) as e:
        make_backend("vllm", model="any/model")
    msg = str(e.value)
    if not _has_vllm():
        assert "needs the vllm package" in msg and "pip install 'tinyschool[vllm]'" in msg
    else:
        assert "needs a CUDA GPU" in msg


def test_vllm_is_imported_only_when_chosen():
    code = ("import sys; from generators.registry import make_backend; "
            "import generators.runner, generators.openai_backend, generators.structured; "
            "make_backend('openai', model='m', base_url='http://127.0.0.1:9/v1'); "
            "print('vllm' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"


@pytest.mark.slow
@pytest.mark.skipif(not (_has_vllm() and _has_gpu() and os.environ.get("TINYSCHOOL_VLLM_MODEL")),
                    reason="needs vLLM, a CUDA GPU and a local model folder in TINYSCHOOL_VLLM_MODEL")
def test_vllm_generates():
    b = make_backend("vllm", model=os.environ["TINYSCHOOL_VLLM_MODEL"], gpu_memory_utilization=0.5, max_model_len=2048)
    reqs = [Request(id=f"r{i}", messages=({"role": "user", "content": f"Write one sentence about the number {i}."},),
                    sampling=Sampling(max_tokens=24, seed=100 + i, temperature=0.8)) for i in range(4)]
    reqs.append(Request(id="pre", messages=({"role": "user", "content": "Tell a tiny story."},),
                        sampling=Sampling(max_tokens=16, seed=5), prefill="Once upon a time"))
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    reqs.append(Request(id="json", messages=({"role": "user", "content": "Give a number as JSON {\"n\": ...}."},),
                        sampling=Sampling(max_tokens=20, seed=6, temperature=0), json_schema=schema))
    first = b.generate(reqs)
    again = b.generate(list(reversed(reqs)))  # another batch order: the same seeds give the same texts
    b.close()
    assert [c.id for c in first] == [r.id for r in reqs]
    assert {c.id: c.text for c in first} == {c.id: c.text for c in again}
    for c in first:
        assert c.ok, c.error
        assert c.prompt_tokens > 0 and c.completion_tokens > 0 and c.created_at > 0
    assert first[4].text.startswith("Once upon a time")
    assert first[5].ok  # guided decoding gave JSON that passed validation


@pytest.mark.slow
@pytest.mark.skipif(not (_has_vllm() and _has_gpu() and os.environ.get("TINYSCHOOL_VLLM_MODEL")),
                    reason="needs vLLM, a CUDA GPU and a local model folder in TINYSCHOOL_VLLM_MODEL")
def test_vllm_constrained_decoding():
    """Issue 15.2 on vLLM: the same logits processor keeps the words in the vocabulary's closure."""
    import re

    from generators.constrain import closure, constraint_for

    vocab = str(REPO / "prompts" / "vocab" / "default.tsv")
    slots = {"verb": "jump", "noun": "frog", "adjective": "happy"}
    b = make_backend("vllm", model=os.environ["TINYSCHOOL_VLLM_MODEL"], gpu_memory_utilization=0.5, max_model_len=2048)
    r = Request(id="c", messages=({"role": "user", "content": "Write a story with big, complicated words."},),
                sampling=Sampling(max_tokens=60, seed=3, temperature=0.8), prefill="Once upon a time,",
                constraint=constraint_for(slots, vocab, 50.0, 6.0))
    c = b.generate([r])[0]
    b.close()
    assert c.ok, c.error
    allowed = closure(vocab)
    outside = [w for w in re.findall(r"[a-z]+", c.text.lower()) if w not in allowed and len(w) > 1]
    assert len(outside) <= 1, (outside, c.text)
