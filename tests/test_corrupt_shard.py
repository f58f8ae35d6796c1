"""Issue 13.3 / 14.6: a damaged shard is one line naming it, never a traceback; the other stages stay
queryable; `verify` marks the damaged stage incomplete and says "not ok"; stages never run are "not run"."""
import json

import pyarrow as pa
import pytest

from conftest import run_cli
from corpora import Corpus, CorruptShardError, raw_table
from corpora.query import CorpusViews, query_arrow
from test_store import records


def _annotated(recs):
    t = raw_table(recs)
    return t.append_column("keep", pa.array([True] * len(recs))).append_column(
        "drop_reason", pa.array([None] * len(recs), pa.string()))


@pytest.fixture()
def corpus(tmp_path):
    c = Corpus(tmp_path / "c").init("c")
    recs = records(6)
    for i, r in enumerate(recs):
        r["text"] = f"Once upon a time a cat sat on mat number {i}."
    c.write_shard("raw", "part-00000", raw_table(recs[:3]))
    c.write_shard("raw", "part-00001", raw_table(recs[3:]))
    c.mark_complete("raw")
    c.write_shard("annotated", "part-00000", _annotated(recs[:3]))
    c.write_shard("annotated", "part-00001", _annotated(recs[3:]))
    c.mark_complete("annotated")
    return c


def _truncate(corpus):
    p = corpus.shard_path("annotated", "part-00001")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p


def _one_line_naming(r, path):
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and len(lines) == 1, r.stderr
    assert str(path) in lines[0] and "tinyschool verify" in lines[0]


def test_truncated_shard_breaks_only_its_stage(corpus, tmp_path):
    bad = _truncate(corpus)
    r = run_cli("query", corpus.root, "SELECT count(*) AS n FROM raw", "--format", "csv")
    assert r.returncode == 0 and r.stdout.split() == ['"n"', "6"], r.stderr
    _one_line_naming(run_cli("query", corpus.root, "SELECT count(*) FROM annotated"), bad)
    _one_line_naming(run_cli("query", corpus.root, "WITH a AS (SELECT * FROM annotated) SELECT count(*) FROM a"), bad)
    _one_line_naming(run_cli("stats", corpus.root), bad)
    r = run_cli("export", corpus.root, "--format", "jsonl", "--out", tmp_path / "out", "--stage", "annotated")
    _one_line_naming(r, bad)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))

    r = run_cli("verify", corpus.root)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    rows = {line.split("│")[1].strip(): line for line in r.stdout.splitlines() if line.count("│") >= 5}
    assert "yes" in rows["raw"]
    assert "damaged" in rows["annotated"] and "yes" not in rows["annotated"]
    assert "not run" in rows["clean"]
    assert str(bad) in r.stdout and r.stdout.strip().splitlines()[-1].startswith("not ok")


def test_same_size_garbage_is_named_when_touched(corpus):
    p = corpus.shard_path("annotated", "part-00001")
    p.write_bytes(b"\0" * p.stat().st_size)  # the cheap size check passes; DuckDB cannot read it
    assert query_arrow(corpus, "SELECT count(*) AS n FROM raw").to_pylist() == [{"n": 6}]
    with pytest.raises(CorruptShardError) as e:
        query_arrow(corpus, "SELECT count(*) FROM annotated")
    assert e.value.path == p and "unreadable Parquet" in str(e.value) and "part-00000" not in str(e.value)


def test_views_live_in_memory_one_connection_per_command(corpus):
    with CorpusViews(corpus) as views:
        assert views.rows("SELECT count(*) AS n FROM annotated") == [{"n": 6}]
        assert views.rows("SELECT count(*) AS n FROM clean") == [{"n": 0}]
        assert views.con.execute("SELECT current_database()").fetchone() == ("memory",)
    assert sorted(p.name for p in corpus.root.iterdir()) == [".lock", "annotated", "manifest.json", "raw"]


def test_fresh_corpus_verifies_ok_with_stages_not_run(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"text": f"story {i}"}) + "\n" for i in range(5)))
    r = run_cli("import", src, "--out", tmp_path / "c")
    assert r.returncode == 0, r.stderr
    r = run_cli("verify", tmp_path / "c")
    assert r.returncode == 0, r.stdout
    rows = {line.split("│")[1].strip(): line for line in r.stdout.splitlines() if line.count("│") >= 5}
    assert "yes" in rows["raw"] and "not run" in rows["annotated"] and "not run" in rows["clean"]
    assert "no:" not in r.stdout and r.stdout.strip().splitlines()[-1].startswith("ok")
