"""The TinyGSM template on the real embedded model (SmolLM2-135M; one prompt sampled twice, few tokens): every
row of the raw corpus is either a parsed problem + solution() or a failed row saying why."""
from __future__ import annotations

import pytest

from corpora import Corpus
from corpora.query import query_arrow
from filters.math_verify import split_document
from generators.config import GenerationConfig
from generators.math_parse import postprocess
from tinyschool.stages.generate import run_generation

pytestmark = [pytest.mark.slow, pytest.mark.serial]  # serial: run alone (scripts/test.sh): sandboxed solutions under a wall-clock limit


class _Shared:
    """The session's model, not closed by the runner (other tests use it too)."""

    def __init__(self, backend):
        self._b = backend
        self.name, self.model, self.api = backend.name, backend.model, getattr(backend, "api", "chat")
        self.batch_size = 4

    def generate(self, requests, progress=None, on_result=None):
        return self._b.generate(requests, progress=progress, on_result=on_result)

    def close(self):
        pass


def test_tinygsm_rows_are_documents_or_parse_failures(tmp_path, local_backend):
    # one short few-shot example and few tokens: the prompt's prefill is what costs on a CPU
    cfg = GenerationConfig(template="tinygsm", vocabulary=None, count=2, samples_per_prompt=2, seed=3, shard_size=2,
                           slot_overrides={"examples": {"count": 1, "min": 1, "max": 2}})
    cfg.sampling.max_tokens = 16
    corpus = Corpus(tmp_path / "c")
    stats = run_generation(corpus, "tinygsm-test", cfg, backend_factory=lambda: _Shared(local_backend),
                           postprocess=postprocess)
    assert stats.planned == 2 and stats.ok + stats.failed == 2
    rows = query_arrow(corpus, "SELECT text, prompt, error, error_kind, sample_index FROM raw ORDER BY sample_index").to_pylist()
    assert len(rows) == 2
    assert rows[0]["prompt"] == rows[1]["prompt"]  # one prompt, two samples (different seeds)
    for r in rows:
        if r["error"] is None:
            problem, code = split_document(r["text"])
            assert problem and "def solution(" in code
        else:
            assert r["error_kind"] == "parse" and r["error"].startswith("parse: ") and r["text"] == ""
    assert stats.failed_by_kind.get("parse", 0) == stats.failed
