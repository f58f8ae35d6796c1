"""Parsing TinyGSM-style completions, the GSM8K few-shot slot source, and the template/recipe."""
from __future__ import annotations

from pathlib import Path

import pytest

from filters.math_verify import split_document
from filters.sandbox import Limits, SandboxPool
from generators.base import Completion
from generators.gsm8k import gsm8k_to_python, load_examples
from generators.math_parse import ParseError, parse_completion, postprocess
from generators.runner import build_plan
from generators.templates import TemplateError, load_template
from tinyschool.recipe import load_recipe

pytestmark = pytest.mark.serial  # run alone (scripts/test.sh): sandboxed solutions under a wall-clock limit

REPO = Path(__file__).resolve().parents[1]
GSM8K = REPO.parent / "shared" / "data" / "gsm8k" / "train.jsonl"
RECIPE = REPO / "prompts" / "recipes" / "tinygsm_demo.toml"

FENCED = """Problem: Mia has 12 apples. She gives 4 apples to Tom and buys 7 more. How many apples does she have now?
Solution:
```python
def solution():
    # Mia starts with 12 apples
    apples_start = 12
    # she gives 4 to Tom
    apples_left = apples_start - 4
    # she buys 7 more
    apples_now = apples_left + 7
    return apples_now
```
Problem: this next problem is cut off"""


def test_fenced_completion():
    p = parse_completion(FENCED)
    assert p.problem.startswith("Mia has 12 apples.") and p.problem.endswith("have now?")
    assert p.code.startswith("def solution():") and p.code.endswith("return apples_now")
    assert "Problem" not in p.code


def test_unfenced_and_cut_off_completions():
    unfenced = ("Problem: Ben reads 5 pages a day for 6 days. How many pages does he read?\n"
                "def solution():\n    pages_per_day = 5\n    days = 6\n    return pages_per_day * days\n"
                "This is the answer.")
    p = parse_completion(unfenced)
    assert p.code == "def solution():\n    pages_per_day = 5\n    days = 6\n    return pages_per_day * days"
    assert p.problem == "Ben reads 5 pages a day for 6 days. How many pages does he read?"
    cut = "Problem: Ana buys 3 boxes of 8 pens each. How many pens?\nSolution:\n```python\ndef solution():\n    pens = 3 * 8\n"
    p = parse_completion(cut)  # the token limit cut the fence: the code runs to the end
    assert p.code == "def solution():\n    pens = 3 * 8"


@pytest.mark.parametrize("text, reason", [
    ("Problem: Lily has 3 cats and 2 dogs. How many pets does she have in all?", "no code"),
    ("Problem: Lily has 3 cats and 2 dogs. How many pets?\n```python\nprint(5)\n```", "no solution() function in the code"),
    ("Problem:\n```python\ndef solution():\n    return 5\n```", "no problem text"),
    ("Problem: Lily has cats.\n```python\ndef solution():\n    return 5\n```", "no problem text before the code (3 words)"),
    ("", "no code"),
])
def test_failures_name_the_reason(text, reason):
    with pytest.raises(ParseError) as e:
        parse_completion(text)
    assert str(e.value) == reason


def test_postprocess_makes_canonical_document_or_failed_row():
    good = postprocess(None, Completion(id="a", text=FENCED))
    assert good.ok and good.error_kind is None
    problem, code = split_document(good.text)  # the verifier reads back exactly what was parsed
    assert (problem, code) == (parse_completion(FENCED).problem, parse_completion(FENCED).code)
    bad = postprocess(None, Completion(id="b", text="Problem: Lily has 3 cats. I like cats a lot."))
    assert not bad.ok and bad.error_kind == "parse"
    assert bad.error.startswith("parse: no code: 'Problem: Lily has 3 cats.")


def test_gsm8k_answer_to_python():
    answer = ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
              "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72")
    code = gsm8k_to_python(answer)
    assert code.splitlines() == [
        "def solution():",
        "    # Natalia sold 48/2 = 24 clips in May.",
        "    clips_may = 48 / 2",
        "    # Natalia sold 48+24 = 72 clips altogether in April and May.",
        "    clips_april = 48 + clips_may",
        "    return clips_april",
    ]
    assert gsm8k_to_python("no calculator here\n#### 5") is None
    assert gsm8k_to_python("bad <<__import__('os')=1>>1\n#### 1") is None


@pytest.mark.slow
def test_converted_gsm8k_examples_return_the_gsm8k_answer_in_the_sandbox():
    rows = load_examples(str(GSM8K))
    assert len(rows) > 6000  # most of the 7473 train problems convert
    sample = rows[::50]
    with SandboxPool(size=2, limits=Limits()) as pool:
        got = pool.map([r["code"] for r in sample])
    for r, res in zip(sample, got):
        assert res.status == "ok", (r["code"], res)
        assert res.number == pytest.approx(float(r["answer"].replace(",", "")), rel=1e-6)
        n_comments = sum(ln.strip().startswith("#") for ln in r["code"].splitlines())
        assert n_comments == r["steps"] >= 1


@pytest.mark.slow
def test_template_plan_is_deterministic_and_groups_samples():
    recipe = load_recipe(RECIPE)
    assert recipe.samples_per_prompt == 4 and recipe.shard_size % recipe.samples_per_prompt == 0
    plan = build_plan(recipe, recipe.name)
    again = build_plan(recipe, recipe.name)
    assert [p.prompt for p in plan] == [p.prompt for p in again] and [p.id for p in plan] == [p.id for p in again]
    k = recipe.samples_per_prompt
    for g in range(0, len(plan), k):
        group = plan[g:g + k]
        assert len({p.prompt for p in group}) == 1  # one prompt per self-consistency group...
        assert len({p.seed for p in group}) == k  # ...sampled with k different seeds
    assert len({p.prompt for p in plan}) == len(plan) // k
    first = plan[0]
    assert first.prefill == f"Problem: {first.slots['name']}"
    assert len(first.slots["examples"]) == 2
    for ex in first.slots["examples"]:
        assert ex["question"] in first.prompt and ex["code"] in first.prompt
    assert f"take {first.slots['steps']} steps" in first.prompt and first.slots["topic"] in first.prompt
    assert load_template("tinygsm").kind == "math"


def test_missing_gsm8k_file_is_one_clear_error(tmp_path):
    # the few-shot source only (the first occurrence); the decontamination eval set stays valid
    text = RECIPE.read_text().replace('path = "../shared/data/gsm8k/train.jsonl"', 'path = "nowhere/train.jsonl"', 1)
    bad = tmp_path / "r.toml"
    bad.write_text(text)
    recipe = load_recipe(bad)
    with pytest.raises(TemplateError) as e:
        build_plan(recipe, recipe.name)
    msg = str(e.value)
    assert "nowhere/train.jsonl" in msg and "file not found" in msg and "\n" not in msg


def test_recipe_can_point_the_examples_elsewhere(tmp_path):
    lines = GSM8K.read_text().splitlines()[:40]
    own = tmp_path / "mine.jsonl"
    own.write_text("\n".join(lines) + "\n")
    text = RECIPE.read_text().replace('path = "../shared/data/gsm8k/train.jsonl"', f'path = "{own}"')
    r = tmp_path / "r.toml"
    r.write_text(text)
    recipe = load_recipe(r)
    plan = build_plan(recipe, recipe.name)
    questions = {__import__("json").loads(x)["question"].strip() for x in lines}
    assert all(ex["question"] in questions for p in plan for ex in p.slots["examples"])
