"""Decontamination against GSM8K (the real file in ../shared/data): planted copies and paraphrases."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import GSM8K
from filters.config import EvalSet
from filters.decontam import EvalIndex, EvalSetError

pytestmark = pytest.mark.skipif(not GSM8K.exists(), reason="needs ../shared/data/gsm8k/train.jsonl")


@pytest.fixture(scope="module")
def gsm8k():
    rows = [json.loads(line) for line in GSM8K.read_text().splitlines() if line.strip()]
    return rows, EvalIndex.load([EvalSet(name="gsm8k", path=str(GSM8K), field="question")], ngram=13)


def test_index_covers_every_long_enough_item(gsm8k):
    rows, index = gsm8k
    assert len(index) + index.short_items == len(rows)
    assert index.short_items < 10


@pytest.mark.parametrize("k", [0, 17, 4000, 7472])
def test_planted_copy_is_found_with_its_item_id(gsm8k, k):
    rows, index = gsm8k
    q = rows[k]["question"]
    doc = f"Tom had a long day at school. Then his teacher wrote this on the board: {q} He thought about it all night."
    assert index.match_text(doc) == ("gsm8k", str(k))
    assert index.reason(index.match_text(doc)) == f"decontam:gsm8k:{k}"
    # case and punctuation do not hide a copy
    assert index.match_text(q.upper().replace(",", " ,")) == ("gsm8k", str(k))


def test_light_paraphrase_sharing_a_13gram_is_found_and_a_full_rewrite_is_not(gsm8k):
    rows, index = gsm8k
    q = rows[0]["question"]  # Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. ...
    light = q.replace("Natalia", "Maria").replace("How many clips did", "How many clips have")
    assert index.match_text(light) == ("gsm8k", "0")
    rewrite = ("In April a girl called Natalia gave 48 friends some clips. In May the number she sold was half of that. "
               "What is the total for the two months?")
    assert index.match_text(rewrite) is None
    words = q.split()
    assert index.match_text(" ".join(words[:12])) is None  # 12 words: shorter than the 13-gram


def test_contains_is_exact_membership(gsm8k):
    """`contains` (the table, then a search for what passes it) equals plain set membership, for
    hashes in the index, random ones (most pass nothing) and random ones that pass the table."""
    import numpy as np

    _, index = gsm8k
    rng = np.random.default_rng(0)
    inside = rng.choice(index.hashes, 5000)
    outside = rng.integers(0, 2**63, 200_000, dtype=np.int64).astype(np.uint64) * np.uint64(2) + np.uint64(1)
    passing = outside[index.may_match(outside)]  # false positives of the table
    assert len(passing) > 100  # the table alone lets some through: the search must rule them out
    probe = np.concatenate([inside, outside, passing])
    assert np.array_equal(index.contains(probe), np.isin(probe, index.hashes))
    assert index.contains(probe[:0]).shape == (0,)


def test_ngram_size_is_configurable(gsm8k):
    rows, _ = gsm8k
    small = EvalIndex.load([EvalSet(name="gsm8k", path=str(GSM8K), field="question")], ngram=8)
    q = rows[1]["question"].split()
    assert small.match_text("a b c " + " ".join(q[:8]) + " x y z") is not None


def test_parquet_eval_set_with_id_field_and_errors(tmp_path):
    p = tmp_path / "eval.parquet"
    text = "the quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat all day"
    pq.write_table(pa.table({"uid": ["q-1", "q-2"], "problem": [text, "short one"]}), p)
    index = EvalIndex.load([EvalSet(name="mini", path=str(p), field="problem", id_field="uid")])
    assert index.match_text("Story: " + text + " The end.") == ("mini", "q-1")
    assert index.short_items == 1
    with pytest.raises(EvalSetError, match="not found"):
        EvalIndex.load([EvalSet(name="x", path=str(tmp_path / "missing.jsonl"))])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"txt": "no field"}\n')
    with pytest.raises(EvalSetError, match=r"bad.jsonl:2: no field 'text'"):
        EvalIndex.load([EvalSet(name="bad", path=str(bad))])
