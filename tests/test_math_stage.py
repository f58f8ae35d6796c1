"""The demo recipe's cleaning settings on a real raw corpus of math documents: the cleaning stage
(tinyschool.stages.annotate.run_annotate) runs every solution in the sandbox, decontaminates against GSM8K
train, and DuckDB reads the result (`annotated`, `clean`)."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from corpora import Corpus, raw_table
from corpora.query import query_arrow
from tinyschool.executors import make_executor
from tinyschool.stages.annotate import run_annotate
from generators.math_parse import to_document
from tinyschool.recipe import load_recipe

pytestmark = pytest.mark.serial  # run alone (scripts/test.sh): sandboxed solutions under a wall-clock limit

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "prompts" / "recipes" / "tinygsm_demo.toml"
GSM8K = REPO.parent / "shared" / "data" / "gsm8k" / "train.jsonl"

GOOD = """def solution():
    # Pablo sells {a} cups of lemonade on Monday
    cups_monday = {a}
    # on Tuesday he sells {b} more cups than on Monday
    cups_tuesday = cups_monday + {b}
    # each cup costs 2 dollars
    money = (cups_monday + cups_tuesday) * 2
    return money"""


def record(i: int, text: str, prompt: str, steps: int, error: str | None = None) -> dict:
    return {"id": f"m{i:03d}", "text": text, "prompt": prompt, "template": "tinygsm",
            "slots": {"steps": steps, "name": "Pablo"}, "backend": "test", "model": "none",
            "sampling": {"temperature": 0.7, "top_p": 0.95, "max_tokens": 256, "seed": i, "repetition_penalty": 1.0},
            "finish_reason": "error" if error else "stop", "prompt_tokens": 10, "completion_tokens": 50, "latency_s": 0.1,
            "created_at": datetime(2026, 1, 1, tzinfo=timezone.utc), "error": error, "error_kind": "parse" if error else None,
            "sample_index": i, "recipe": "tinygsm-demo", "meta": None}


@pytest.mark.slow
def test_cleaning_stage_verifies_and_decontaminates(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # the recipe's GSM8K path is relative to the repository root
    recipe = load_recipe(RECIPE)
    copied = json.loads(GSM8K.read_text().splitlines()[3])["question"]
    rows = []
    for i in range(6):  # verified, distinct problems
        a, b = 3 + i, 11 + 2 * i
        problem = (f"Pablo runs a lemonade stand. He sells {a} cups on Monday and {b} more cups on Tuesday than on "
                   f"Monday. Each cup costs 2 dollars. How much money does he make in problem number {i}?")
        rows.append(record(i, to_document(problem, GOOD.format(a=a, b=b)), f"prompt {i // 2}", 2 + i % 2))
    rows.append(record(6, to_document("Pablo has 17 marbles in a jar and loses a few of them at school today. "
                                      "How many marbles are left now?", "def solution():\n    return 17 / 0"), "prompt 3", 2))
    rows.append(record(7, to_document(copied, "def solution():\n    return 42"), "prompt 3", 3))  # a GSM8K problem
    rows.append(record(8, "", "prompt 4", 4, error="parse: no code: 'Problem: Pablo likes lemonade.'"))
    corpus = Corpus(tmp_path / "c")
    corpus.init("tinygsm-demo", None)
    corpus.write_shard("raw", "part-00000", raw_table(rows))

    stats = run_annotate(corpus, recipe.filters, None, make_executor(workers=1))
    assert stats.docs == 9
    got = {r["id"]: r for r in query_arrow(corpus, "SELECT id, keep, drop_reason, verified, answer, sandbox_status, "
                                                   "ast_ops, loc, decontam_match FROM annotated").to_pylist()}
    for i in range(6):
        r = got[f"m{i:03d}"]
        assert r["keep"] and r["verified"] and r["sandbox_status"] == "ok", r
        assert r["answer"] == 2 * ((3 + i) + (3 + i + 11 + 2 * i)) and r["loc"] == 5 and r["ast_ops"] == 3
    assert got["m006"]["drop_reason"] == "math:exception" and not got["m006"]["keep"]
    assert got["m007"]["drop_reason"].startswith("decontam:gsm8k-train:") and got["m007"]["decontam_match"] == "gsm8k-train:3"
    assert not got["m008"]["keep"]
    clean = query_arrow(corpus, "SELECT count(*) AS n, bool_and(verified) AS all_verified FROM clean").to_pylist()[0]
    assert clean == {"n": 6, "all_verified": True}
    # self-consistency through the real stage: documents of one prompt are voted on together
    sc = {r["id"]: r for r in query_arrow(corpus, "SELECT id, sc_samples, sc_agreement FROM annotated").to_pylist()}
    assert sc["m000"]["sc_samples"] == 2 and sc["m001"]["sc_samples"] == 2
    # prompt 0 holds two different answers (1 of 2 agree); prompt 3 holds m006 (no answer) and m007 (42)
    assert sc["m000"]["sc_agreement"] == 0.5 and sc["m006"]["sc_samples"] == 2
