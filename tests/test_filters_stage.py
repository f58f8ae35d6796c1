"""The annotate stage end to end on a real corpus: hostile documents, dedup columns, decontamination,
the report, DuckDB over `annotated`, skip when up to date, SIGKILL resume and byte-identical re-runs."""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

from conftest import GSM8K, REPO, run_cli
from corpora import Corpus, raw_table
from corpora.query import query_arrow
from corpora.schema import RAW_SCHEMA
from filters.config import FilterConfig
from tinyschool.executors import make_executor
from tinyschool.stages.annotate import run_annotate

VOCAB = REPO / "prompts" / "vocab" / "default.tsv"
WORDS = [line.split("\t")[0] for line in VOCAB.read_text().splitlines()[1:400]]
GLUE = ["the", "a", "she", "he", "and", "was", "to", "with", "her", "his", "they", "then"]
FEATURES = ["Dialogue", "BadEnding", "MoralValue", "Twist"]


def story(rng: random.Random, slots: dict) -> str:
    sents = [f"{slots['name']} had a {slots['adjective']} {slots['noun']} and liked to {slots['verb']} with it."]
    while sum(len(s.split()) for s in sents) < rng.randint(70, 140):
        w = [rng.choice(GLUE)] + [rng.choice(WORDS) if rng.random() < 0.6 else rng.choice(GLUE) for _ in range(rng.randint(5, 11))]
        sents.append(" ".join(w).capitalize() + ".")
    return " ".join(sents)


def record(i: int, text, slots: dict, **kw) -> dict:
    return {"id": f"doc-{i:05d}", "text": text, "prompt": "Write a short story for a small child.", "template": "tinystories",
            "slots": slots, "backend": "test", "model": "none", "finish_reason": "stop", "sample_index": i, "recipe": "t", **kw}


def invalid_utf8_table(recs: list[dict], bad_row: int, payload: bytes) -> pa.Table:
    """A raw table whose `text` at bad_row holds bytes that are not UTF-8 (as a damaged import could leave)."""
    t = raw_table(recs)
    texts = [(r["text"] or "").encode() for r in recs]
    texts[bad_row] = payload
    offsets, data = [0], b""
    for b in texts:
        data += b
        offsets.append(len(data))
    arr = pa.Array.from_buffers(pa.string(), len(texts), [None, pa.py_buffer(pa.array(offsets, pa.int32()).buffers()[1]), pa.py_buffer(data)])
    return t.set_column(t.schema.get_field_index("text"), "text", arr)


def build_corpus(root: Path, shards: int = 4, per_shard: int = 60, seed: int = 0) -> dict[str, str]:
    """A raw corpus with ordinary stories and, planted: hostile texts, an exact and a near duplicate,
    a GSM8K question. Returns {role: id} of the planted documents."""
    rng = random.Random(seed)
    c = Corpus(root).init("t")
    gsm = json.loads(GSM8K.read_text().splitlines()[123])["question"]
    planted: dict[str, str] = {}
    i = 0
    first_story = None
    for k in range(shards):
        recs = []
        for _ in range(per_shard):
            slots = {"verb": rng.choice(["play", "jump", "run"]), "noun": rng.choice(["dog", "ball", "tree"]),
                     "adjective": rng.choice(["happy", "big", "red"]), "name": rng.choice(["Lily", "Tom", "Mia"]),
                     "features": rng.sample(FEATURES, rng.randint(0, 2))}
            recs.append(record(i, story(rng, slots), slots))
            i += 1
        if k == 0:
            first_story = recs[3]
            hostile = {
                "empty": "", "one_mb": ("The dog ran to the park. " * 45000)[:1_000_000], "no_letters": "1234 5678 !!! ??? 42.",
                "cjk": "从前有一只小狗。它喜欢在公园里玩。有一天，它找到了一个红色的球。", "long_line": "a" * 10_000,
                "refusal": "As an AI language model, I cannot write that story. " * 3,
            }
            for j, (role, text) in enumerate(hostile.items()):
                recs[10 + j]["text"] = text
                planted[role] = recs[10 + j]["id"]
            recs[20]["text"], recs[20]["error"], recs[20]["error_kind"] = "", "timed out", "timeout"
            planted["error"] = recs[20]["id"]
        if k == 1:
            recs[5]["text"] = first_story["text"].upper().replace(".", " .")  # same normalized text
            recs[5]["slots"] = first_story["slots"]
            planted["exact"] = recs[5]["id"]
            words = first_story["text"].split()
            words[len(words) // 2] = "zebra"
            recs[6]["text"], recs[6]["slots"] = " ".join(words), first_story["slots"]
            planted["near"] = recs[6]["id"]
            recs[7]["text"] = recs[7]["text"] + " Then the teacher asked: " + gsm + " Nobody knew."
            planted["gsm8k"] = recs[7]["id"]
        table = raw_table(recs)
        if k == 2:
            table = invalid_utf8_table(recs, 4, b"The dog ran \xff\xfe to the park. " * 5)
            planted["invalid_utf8"] = recs[4]["id"]
        c.write_shard("raw", f"part-{k:05d}", table)
    planted["original"] = first_story["id"]
    c.mark_complete("raw")
    return planted


def filter_config(**kw) -> FilterConfig:
    return FilterConfig.model_validate({"length": {"min_words": 20},
                                        "decontam": {"eval_sets": [{"name": "gsm8k", "path": str(GSM8K), "field": "question"}]}, **kw})


@pytest.fixture(scope="module")
def raw_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw") / "corpus"
    planted = build_corpus(root)
    return root, planted


@pytest.fixture(scope="module")
def annotated(raw_corpus, tmp_path_factory):
    src, planted = raw_corpus
    root = tmp_path_factory.mktemp("ann") / "corpus"
    shutil.copytree(src, root)
    stats = run_annotate(Corpus(root), filter_config(), VOCAB, make_executor(workers=1))
    return Corpus(root), planted, stats


def rows_by_id(corpus: Corpus) -> dict[str, dict]:
    t = corpus.read_stage("annotated")
    return {r["id"]: r for r in t.to_pylist()}


@pytest.mark.slow  # builds and annotates the module's corpus (~15 s)
def test_every_document_is_annotated_and_clean_is_the_kept_ones(annotated):
    corpus, planted, stats = annotated
    assert corpus.count("annotated") == corpus.count("raw") == stats.docs == 240
    assert corpus.count("clean") == stats.kept > 150
    t = corpus.read_stage("annotated")
    for col in ["flesch_reading_ease", "flesch_kincaid_grade", "gunning_fog", "coleman_liau_index", "automated_readability_index",
                "word_count", "sentence_count", "char_count", "distinct_1", "distinct_2", "distinct_3", "compression_ratio",
                "oov_rate", "oov_words", "required_words_present", "cluster_id", "duplicate_of", "keep", "drop_reason",
                "dup_line_frac", "top_2gram_char_frac", "dup_10gram_char_frac", *RAW_SCHEMA.names]:
        assert col in t.column_names, col
    assert t.schema.field("oov_words").type == pa.list_(pa.string())
    keep, reason = t.column("keep").to_pylist(), t.column("drop_reason").to_pylist()
    assert all(k == (r is None) for k, r in zip(keep, reason))
    assert sum(stats.dropped.values()) + stats.kept == stats.docs
    assert set(corpus.read_stage("clean").column("keep").to_pylist()) == {True}


def test_hostile_documents_get_a_reason(annotated):
    corpus, planted, _ = annotated
    rows = rows_by_id(corpus)
    expect = {"empty": "degenerate:empty", "no_letters": "degenerate:no_letters", "refusal": "degenerate:refusal",
              "error": "generation_error:timeout", "invalid_utf8": "degenerate:invalid_utf8", "one_mb": "length:too_long",
              "long_line": "degenerate:unfinished", "cjk": "length:too_short"}
    for role, reason in expect.items():
        assert rows[planted[role]]["drop_reason"] == reason, role
    assert "\ufffd" in rows[planted["invalid_utf8"]]["text"]  # repaired in annotated; raw keeps the bytes
    assert rows[planted["one_mb"]]["char_count"] == 1_000_000


def test_duplicates_and_decontamination(annotated):
    corpus, planted, stats = annotated
    rows = rows_by_id(corpus)
    orig = planted["original"]
    assert rows[orig]["keep"] and rows[orig]["cluster_id"] == orig and rows[orig]["duplicate_of"] is None
    assert rows[planted["exact"]]["drop_reason"] == f"exact_duplicate:{orig}"
    assert rows[planted["near"]]["drop_reason"] == f"near_duplicate:{orig}"
    for role in ("exact", "near"):
        assert rows[planted[role]]["duplicate_of"] == orig and rows[planted[role]]["cluster_id"] == orig
    assert rows[planted["gsm8k"]]["drop_reason"] == "decontam:gsm8k:123"
    assert rows[planted["gsm8k"]]["decontam_match"] == "gsm8k:123"
    assert stats.exact_duplicates == 1 and stats.near_duplicates == 1 and stats.dropped["decontam:gsm8k"] == 1
    # one kept representative per cluster
    t = corpus.read_stage("annotated")
    clusters: dict[str, list] = {}
    for r in t.to_pylist():
        clusters.setdefault(r["cluster_id"], []).append(r)
    for members in clusters.values():
        assert sum(1 for r in members if r["duplicate_of"] is None) == 1


def test_report_png_and_duckdb_over_annotated(annotated):
    corpus, _, stats = annotated
    png = Path(stats.histogram)
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    by_feature = query_arrow(corpus, """
        SELECT f.feature, count(*) AS docs, count(*) FILTER (WHERE NOT keep) AS dropped
        FROM annotated, unnest(CAST(slots->'$.features' AS VARCHAR[])) AS f(feature)
        GROUP BY 1 ORDER BY 1""").to_pylist()
    assert {r["feature"] for r in by_feature} <= {"Dialogue", "BadEnding", "MoralValue", "Twist"} and by_feature
    reasons = query_arrow(corpus, "SELECT drop_reason, count(*) AS n FROM annotated WHERE NOT keep GROUP BY 1").to_pylist()
    assert sum(r["n"] for r in reasons) == stats.docs - stats.kept


def test_rerun_is_nothing_to_do_and_redo_is_byte_identical(annotated, raw_corpus, tmp_path):
    corpus, _, stats = annotated
    again = run_annotate(corpus, filter_config(), VOCAB, make_executor(workers=1))
    assert again.nothing_to_do and again.kept == stats.kept
    # a second corpus from the same raw, with the process pool: the same bytes
    src, _ = raw_corpus
    other = tmp_path / "c2"
    shutil.copytree(src, other)
    run_annotate(Corpus(other), filter_config(), VOCAB, make_executor(workers=2))
    for stage in ("annotated", "clean"):
        a = {n: e["xxh3_128"] for n, e in corpus.shard_entries(stage).items()}
        b = {n: e["xxh3_128"] for n, e in Corpus(other).shard_entries(stage).items()}
        assert a == b, stage


@pytest.mark.slow
def test_changed_raw_or_thresholds_redo_the_stage(raw_corpus, tmp_path):
    src, _ = raw_corpus
    root = tmp_path / "c"
    shutil.copytree(src, root)
    c = Corpus(root)
    first = run_annotate(c, filter_config(), VOCAB, make_executor(workers=1))
    stricter = run_annotate(c, filter_config(length={"min_words": 100}), VOCAB, make_executor(workers=1))
    assert not stricter.nothing_to_do and stricter.kept < first.kept
    rng = random.Random(5)
    slots = {"verb": "run", "noun": "dog", "adjective": "big", "name": "Tom"}
    c.write_shard("raw", "part-00009", raw_table([record(9000 + j, story(rng, slots), slots) for j in range(5)]))
    more = run_annotate(c, filter_config(length={"min_words": 100}), VOCAB, make_executor(workers=1))
    assert not more.nothing_to_do and more.docs == first.docs + 5 and c.count("annotated") == more.docs


RECIPE = """
name = "t"
out = "{out}"
template = "tinystories"
vocabulary = "default"
[filters.length]
min_words = 20
[[filters.decontam.eval_sets]]
name = "gsm8k"
path = "{gsm8k}"
field = "question"
"""


@pytest.mark.slow
def test_cli_resumes_after_sigkill_with_the_same_bytes(raw_corpus, annotated, tmp_path):
    ref, _, _ = annotated
    src, _ = raw_corpus
    root = tmp_path / "c"
    shutil.copytree(src, root)
    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE.format(out=root, gsm8k=GSM8K))
    # kill the stage once its first shard of step 1 is on disk, before it finishes
    proc = subprocess.Popen([sys.executable, "-m", "tinyschool", "annotate", str(recipe), "--workers", "1"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    work = root / ".annotate"
    while time.time() < deadline and proc.poll() is None:
        if work.exists() and any(work.glob("*/part-00000.parquet")):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the stage ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not Corpus(root).is_complete("annotated")
    done_before = sorted(p.name for p in work.glob("*/*.parquet"))
    assert done_before  # at least one shard survived the kill
    out = run_cli("annotate", recipe, "--workers", "1")
    assert out.returncode == 0, out.stderr
    for stage in ("annotated", "clean"):
        assert ({n: e["xxh3_128"] for n, e in Corpus(root).shard_entries(stage).items()}
                == {n: e["xxh3_128"] for n, e in ref.shard_entries(stage).items()})
    out = run_cli("annotate", recipe)
    assert out.returncode == 0 and "nothing to do" in out.stdout


@pytest.mark.slow
def test_cli_bad_eval_set_is_one_clear_line(raw_corpus, tmp_path):
    src, _ = raw_corpus
    root = tmp_path / "c"
    shutil.copytree(src, root)
    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE.format(out=root, gsm8k=tmp_path / "nope.jsonl"))
    out = run_cli("annotate", recipe, "--workers", "1")
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "nope.jsonl" in out.stderr and "not found" in out.stderr
    recipe.write_text(RECIPE.format(out=root, gsm8k=GSM8K).replace("min_words = 20", "min_wordz = 20"))
    out = run_cli("annotate", recipe)
    assert out.returncode == 2 and "filters.length.min_wordz: unknown key" in out.stderr
