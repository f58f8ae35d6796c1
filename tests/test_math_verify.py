"""Verification of math documents (real sandbox), self-consistency, difficulty measures, and
decontamination against GSM8K through the cleaning engineer's `filters.decontam`."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from filters.base import Resources
from filters.config import EvalSet
from filters.decontam import EvalIndex
from filters.math_verify import (MathConfig, MathVerifyAnnotator, ast_ops, lines_of_code, majority, self_consistency,
                                 split_document)
from filters.text import Doc
from generators.math_parse import to_document
from tinyschool.recipe import load_recipe

pytestmark = pytest.mark.serial  # run alone (scripts/test.sh): sandboxed solutions under a 1 s wall-clock limit

REPO = Path(__file__).resolve().parents[1]
GSM8K = REPO.parent / "shared" / "data" / "gsm8k" / "train.jsonl"
RECIPE = REPO / "prompts" / "recipes" / "tinygsm_demo.toml"

PROBLEM = "Mia has 12 apples. She gives 4 apples to Tom and buys 7 more. How many apples does she have now?"
GOOD = """def solution():
    # Mia starts with 12 apples
    apples_start = 12
    # she gives 4 to Tom

    apples_left = apples_start - 4
    # she buys 7 more
    apples_now = apples_left + 7
    return apples_now"""


def doc(code: str, prompt: str = "p", i: int = 0, problem: str = PROBLEM, error: str | None = None) -> Doc:
    return Doc(f"d{i}", "" if error else to_document(problem, code), prompt, {}, "stop", error)


@pytest.fixture(scope="module")
def annotator():
    a = MathVerifyAnnotator(MathConfig(enabled=True, wall_s=1.0, cpu_s=1.0, workers=2), Resources())
    yield a
    a.close()


def test_difficulty_measures():
    assert lines_of_code(GOOD) == 5  # def, three assignments, return (comments and blanks excluded)
    assert ast_ops(GOOD) == 2  # one subtraction, one addition
    assert ast_ops("def solution():\n    return round(sum([1, 2]) * 3 / -x, 2)\n") == 5  # round, sum, *, /, unary -
    assert ast_ops("def solution(:\n") is None


def test_verified_and_failure_kinds(annotator):
    docs = [
        doc(GOOD, i=0),
        doc("def solution():\n    return 1 / 0", i=1),
        doc("def solution():\n    return 'seven'", i=2),
        doc("def solution():\n    return float('inf')", i=3),
        doc("def solution():\n    while True:\n        pass", i=4),
        doc("import os\ndef solution():\n    return os.system('true')", i=5),
        Doc("d6", "Problem: no code here at all, just words.", "p", {}, "stop", None),
        doc("", i=7, error="parse"),
    ]
    out = annotator.annotate_batch(docs)
    (v0, r0), (v1, r1), (v2, r2), (v3, r3), (v4, r4), (v5, r5), (v6, r6), (v7, r7) = out
    assert v0["verified"] is True and v0["answer"] == 15.0 and r0 is None
    assert v0["loc"] == 5 and v0["ast_ops"] == 2 and v0["runtime_s"] >= 0 and v0["sandbox_status"] == "ok"
    assert (v1["sandbox_status"], r1) == ("exception", "math:exception") and "ZeroDivisionError" in v1["sandbox_error"]
    assert (v2["sandbox_status"], r2) == ("not_a_number", "math:not_a_number") and v2["answer"] is None
    assert (v3["sandbox_status"], v3["verified"]) == ("not_a_number", False)  # infinite is not an answer
    assert v4["sandbox_status"] in ("cpu", "timeout") and r4 == f"math:{v4['sandbox_status']}"
    assert (v5["sandbox_status"], r5) == ("blocked", "math:blocked")
    assert (v6["sandbox_status"], r6) == ("no_code", "math:no_code")
    assert v7["verified"] is False and r7 is None  # a failed request keeps the generation's own reason
    assert set(v0) == set(MathVerifyAnnotator.columns)


def test_self_consistency_groups_by_prompt(annotator):
    five = "def solution():\n    total = 2 + 3\n    return total"
    seven = "def solution():\n    return 7"
    docs = [doc(five, "A", 0), doc(five, "A", 1), doc(seven, "A", 2), doc("def solution():\n    return 1/0", "A", 3),
            doc(seven, "B", 4), doc(seven, "B", 5), doc(five, "C", 6)]
    out = [v for v, _ in annotator.annotate_batch(docs)]
    assert [v["sc_samples"] for v in out] == [4, 4, 4, 4, 2, 2, 1]
    assert [v["sc_answer"] for v in out[:4]] == [5.0] * 4
    assert [v["sc_agreement"] for v in out[:4]] == [0.5] * 4  # 2 of 4 samples (the failed one counts)
    assert [v["sc_majority"] for v in out[:4]] == [True, True, False, False]
    assert [v["sc_agreement"] for v in out[4:6]] == [1.0, 1.0]
    assert out[6]["sc_answer"] is None and out[6]["sc_agreement"] is None  # a lone sample: no vote
    assert len({out[0]["sc_group"], out[4]["sc_group"], out[6]["sc_group"]}) == 3


def test_majority_ties_and_rounding():
    assert majority([3.0, 2.0, 2.0000000001, 3.0]) == (2.0, 2)  # tie -> the smaller; close values are one
    assert majority([None, None]) == (None, 0)
    sc = self_consistency(["x", "x", "x"], [4.0, None, 4.0])
    assert [s["sc_agreement"] for s in sc] == [pytest.approx(2 / 3)] * 3


def test_min_agreement_drops_weak_groups():
    a = MathVerifyAnnotator(MathConfig(enabled=True, min_agreement=0.75, workers=1), Resources())
    try:
        out = a.annotate_batch([doc("def solution():\n    return 5", "A", 0), doc("def solution():\n    return 6", "A", 1)])
    finally:
        a.close()
    assert [r for _, r in out] == ["math:low_agreement", "math:low_agreement"]


def test_split_document_round_trip():
    assert split_document(to_document(PROBLEM, GOOD)) == (PROBLEM, GOOD)
    assert split_document("Once upon a time there was a cat.") is None


def test_decontamination_against_gsm8k_train():
    """The recipe's eval set (GSM8K train questions, 13-grams) catches a copied problem and not a new one."""
    recipe_text = RECIPE.read_text()
    assert "gsm8k" in recipe_text and "train.jsonl" in recipe_text
    lines = GSM8K.read_text().splitlines()
    index = EvalIndex.load([EvalSet(name="gsm8k", path=str(GSM8K), field="question")], ngram=13)
    copied_q = json.loads(lines[0])["question"]
    copied = to_document(copied_q, "def solution():\n    return 72")
    assert index.match_text(copied) == ("gsm8k", "0")
    # a problem that reuses short phrases ("How many clips did") but no 13 words in a row
    fresh = to_document("Natalia sold 30 clips to her friends on Monday and 12 clips on Tuesday. How many clips did "
                        "she sell?", "def solution():\n    return 30 + 12")
    assert index.match_text(fresh) is None


def test_recipe_names_gsm8k_as_eval_set():
    filters = load_recipe(RECIPE).filters
    sets = filters.decontam.eval_sets
    assert filters.decontam.ngram == 13
    assert any(Path(es.path).name == "train.jsonl" and "gsm8k" in es.path and es.field == "question" for es in sets)
    assert filters.math.enabled
    assert math.isclose(filters.math.cpu_s, 1.0)


def test_numbers_too_large_for_a_float_are_finite_answers(annotator):
    from fractions import Fraction

    docs = [doc("def solution():\n    return 10 ** 400", "A", 0),
            doc("def solution():\n    n = 10 ** 400\n    return n + 1 - 1", "A", 1),
            doc("def solution():\n    return -(3 ** 700)", "A", 2),
            doc("from fractions import Fraction\ndef solution():\n    return Fraction(10 ** 400, 3)", i=3),
            doc("def solution():\n    return 2 ** 60 + 1", i=4),
            doc("def solution():\n    return 10 ** 5000", i=5)]
    out = [v for v, _ in annotator.annotate_batch(docs)]
    big, same, neg, frac, exact, huge = out
    assert big["verified"] is True and big["sandbox_status"] == "ok" and big["answer_too_large"] is True
    assert big["answer"] is None and big["answer_exact"] == str(10 ** 400) and int(big["answer_exact"]) == 10 ** 400
    assert neg["answer_exact"] == str(-(3 ** 700)) and neg["verified"]
    assert frac["verified"] and frac["answer_too_large"] and Fraction(frac["answer_exact"]) == Fraction(10 ** 400, 3)
    # within the float range: the float beside the exact value (2**60 + 1 is not a float)
    assert exact["answer"] == float(2 ** 60) and exact["answer_exact"] == str(2 ** 60 + 1) and not exact["answer_too_large"]
    # more digits than Python prints: still a finite number, flagged too_large
    assert huge["verified"] and huge["answer_too_large"] and huge["answer_exact"] is None
    # self-consistency compares such answers by their exact text: 2 of 3 in group A agree
    assert [v["sc_agreement"] for v in (big, same, neg)] == [pytest.approx(2 / 3)] * 3
    assert [v["sc_majority"] for v in (big, same, neg)] == [True, True, False]
    assert big["sc_answer"] is None  # the float column cannot hold it; answer_exact has it
