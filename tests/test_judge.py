"""Issue 7: LLM-judge evaluation with the real embedded model as judge, on a handful of completions."""
import json

import pyarrow.parquet as pq
import pytest

from conftest import REPO, run_cli
from trainers.judge import JudgeScores, agreement, parse_answer, sanity_check, beginnings_from_corpus
from trainers.config import load_experiment
from trainers.train import train_run
from test_trainer_train import exp_file, make_corpus


def test_parse_answer_validates():
    s = parse_answer('{"grammar": 7, "creativity": 5, "consistency": 6, "plot": 4, "age_group": "C"}')
    assert isinstance(s, JudgeScores) and s.overall == 5.5
    # the stop string `}` is cut by the backend; text around the object is ignored
    assert parse_answer('Sure! {"grammar": 3, "creativity": 3, "consistency": 3, "plot": 3').grammar == 3
    # a bad age guess is dropped, the grades stay
    s = parse_answer('{"grammar": 1, "creativity": 2, "consistency": 3, "plot": 4, "age_group": "1"}')
    assert s.age_group is None and s.plot == 4
    for bad, why in [("no json here", "no JSON object"), ('{"grammar": 11, "creativity": 5, "consistency": 6, "plot": 4}', "grammar"),
                     ('{"grammar": 5, "creativity": 5}', "consistency"), ('{"grammar": 5, "creativity": 5, "consistency": 5, "plot": x}', "invalid JSON")]:
        with pytest.raises(ValueError, match=why):
            parse_answer(bad)


def test_sanity_and_agreement():
    ok, msg = sanity_check({"good": [8, 7], "shuffled": [4, 5], "repeated": [2, 3]})
    assert ok and msg.startswith("passed")
    ok, msg = sanity_check({"good": [4, 4], "shuffled": [6, 5], "repeated": [2, 3]})
    assert not ok and "FLAGGED" in msg and "shuffled" in msg
    a = agreement([1, 2, 3, 4, 5], [2, 2, 4, 4, 6])
    assert a["n"] == 5 and a["within_1"] == 1.0 and a["spearman"] > 0.9


def test_the_shipped_eval_set():
    rows = [json.loads(line) for line in (REPO / "prompts/eval/beginnings.jsonl").read_text().splitlines()]
    assert len(rows) >= 50 and len({r["id"] for r in rows}) == len(rows)
    refs = [json.loads(line) for line in (REPO / "prompts/eval/references.jsonl").read_text().splitlines()]
    assert {r["kind"] for r in refs} == {"good", "shuffled", "repeated"}


@pytest.mark.slow
def test_evaluate_a_trained_run_with_the_embedded_judge(tmp_path):
    make_corpus(tmp_path / "corpus")
    train_run(load_experiment(exp_file(tmp_path, "exp")), "random", 1, threads=2)
    run = tmp_path / "exp" / "random" / "seed1"
    refs = tmp_path / "refs.jsonl"
    lines = (REPO / "prompts/eval/references.jsonl").read_text().splitlines()
    refs.write_text("\n".join(lines[i] for i in (0, 3, 6)) + "\n")  # one good, one shuffled, one repeated

    from tinyschool.evaluate import EvalConfig, evaluate_run
    from generators.config import BackendConfig

    ecfg = EvalConfig(judges=[BackendConfig(name="local", batch_size=8)], count=2, references=str(refs), max_tokens=20)
    path = evaluate_run(run, ecfg)
    t = pq.read_table(path)
    assert path == run / "judge.parquet" and t.num_rows == 5
    rows = t.to_pylist()
    assert {r["kind"] for r in rows} == {"completion", "good", "shuffled", "repeated"}
    for r in rows:
        assert r["judge"] == "local:SmolLM2-135M-Instruct"
        assert 1 <= r["attempts"] <= 3 and len(r["raw_answers"]) == r["attempts"]
        assert "***" in r["judge_prompt"] and r["completion"] in r["judge_prompt"]
        if r["valid"]:
            assert all(1 <= r[c] <= 10 for c in ("grammar", "creativity", "consistency", "plot")) and r["error"] is None
        else:
            assert r["error"] and r["attempts"] == 3  # invalid answers were asked again
    # the same evaluation again answers from the request cache: identical scores
    again = pq.read_table(evaluate_run(run, ecfg))
    assert again.column("overall").to_pylist() == t.column("overall").to_pylist()

    r = run_cli("evaluate", tmp_path / "nowhere")
    assert r.returncode == 2 and "not a trained run" in r.stderr


@pytest.mark.slow
def test_eval_prompts_from_heldout(tmp_path):
    make_corpus(tmp_path / "corpus")
    rows = beginnings_from_corpus(str(tmp_path / "corpus"), 5, heldout=0.2)
    assert 1 <= len(rows) <= 5 and all(r["id"].startswith("heldout-") and r["text"] for r in rows)
    out = tmp_path / "b.jsonl"
    r = run_cli("eval-prompts", tmp_path / "corpus", "--count", "5", "--heldout", "0.2", "--out", out)
    assert r.returncode == 0, r.stderr
    assert [json.loads(x) for x in out.read_text().splitlines()] == rows


def test_eval_prompts_says_how_many_and_why_when_it_finds_fewer(tmp_path):
    make_corpus(tmp_path / "corpus")
    found = {}
    rows = beginnings_from_corpus(str(tmp_path / "corpus"), 100, heldout=0.2, found=found)
    assert len(rows) < 100 and found["held_out"] - found["too_short"] == len(rows)
    r = run_cli("eval-prompts", tmp_path / "corpus", "--count", "100", "--heldout", "0.2", "--out", tmp_path / "b.jsonl",
                env={"COLUMNS": "300"})
    assert r.returncode == 0, r.stderr
    out = " ".join(r.stdout.split())
    assert f"only {len(rows)} of the 100 asked for" in out
    assert f"the corpus has {found['documents']} documents, {found['held_out']} of them held out" in out
    assert f"{found['too_short']} of those have fewer than 3 sentences" in out
