"""Issue 2.9: DuckDB views over the shards in place, output formats, read-only, stats."""
import csv
import io
import json

import pyarrow.parquet as pq
import pytest

from conftest import run_cli
from corpora import Corpus, raw_table
from corpora.store import CorruptShardError
from corpora.query import query_arrow
from test_store import records


@pytest.fixture()
def corpus(tmp_path):
    c = Corpus(tmp_path / "c").init("c")
    recs = records(6)
    recs[2]["error"], recs[2]["error_kind"], recs[2]["text"] = "HTTP 500", "server", ""
    for i, r in enumerate(recs):
        r["text"] = r["text"] or ""
        if not r.get("error"):
            r["text"] = ("Once upon a time " if i % 2 else "One rainy day ") + "a cat sat on a mat."
    c.write_shard("raw", "part-00000", raw_table(recs[:3]))
    c.write_shard("raw", "part-00001", raw_table(recs[3:]))
    return c


def test_views_over_files_in_place(corpus):
    t = query_arrow(corpus, "SELECT count(*) AS n, count(error) AS errors FROM raw")
    assert t.to_pylist() == [{"n": 6, "errors": 1}]
    t = query_arrow(corpus, "SELECT slots->>'$.k' AS k FROM raw ORDER BY sample_index")
    assert t.column("k").to_pylist() == [str(i) for i in range(6)]
    assert query_arrow(corpus, "SELECT count(*) AS n FROM clean").to_pylist() == [{"n": 0}]


def test_formats(corpus, tmp_path):
    r = run_cli("query", corpus.root, "SELECT id, sample_index FROM raw ORDER BY sample_index", "--format", "csv")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [row["id"] for row in rows] == [f"id{i}" for i in range(6)]
    r = run_cli("query", corpus.root, "SELECT id FROM raw ORDER BY id LIMIT 2", "--format", "json")
    assert [json.loads(line) for line in r.stdout.splitlines()] == [{"id": "id0"}, {"id": "id1"}]
    out = tmp_path / "q.parquet"
    r = run_cli("query", corpus.root, "SELECT * FROM raw", "--format", "parquet", "--output", out)
    assert r.returncode == 0 and pq.read_table(out).num_rows == 6
    r = run_cli("query", corpus.root, "SELECT template, count(*) AS docs FROM raw GROUP BY 1")
    assert r.returncode == 0 and "template" in r.stdout and "docs" in r.stdout and "│ t" in r.stdout


@pytest.mark.parametrize("sql", [
    "INSERT INTO raw VALUES (1)",
    "CREATE TABLE x AS SELECT 1",
    "COPY (SELECT 1) TO '/tmp/tinyschool_should_not_exist.csv'",
    "SELECT 1; DROP VIEW raw",
    "ATTACH '/tmp/x.db'",
])
def test_writes_are_refused(corpus, sql):
    r = run_cli("query", corpus.root, sql)
    assert r.returncode == 1
    assert "read-only" in r.stderr and "Traceback" not in r.stderr
    assert Corpus(corpus.root).verify() == []


def test_a_lateral_unnest_of_a_column(corpus):
    """`FROM raw, unnest(list_column)` (the README's OOV-word query): DuckDB's parser alone cannot
    name the tables of such a query; the stages it reads are still checked and the query runs."""
    t = query_arrow(corpus, "SELECT w, count(*) AS n FROM raw, unnest(string_split(text, ' ')) AS t(w) "
                            "WHERE w = 'cat' GROUP BY 1")
    assert t.to_pylist() == [{"w": "cat", "n": 5}]
    # a damaged stage is still named when such a query reads it
    shard = corpus.shard_files("raw")[0]
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.raises(CorruptShardError, match="part-00000"):
        query_arrow(corpus, "SELECT w FROM raw, unnest(string_split(text, ' ')) AS t(w)")
    from corpora.query import stages_read
    assert stages_read("SELECT w FROM annotated, unnest(oov_words) AS t(w)") == {"annotated"}


def test_sql_error_is_one_line(corpus):
    r = run_cli("query", corpus.root, "SELECT nope FROM raw")
    assert r.returncode == 1 and "SQL error" in r.stderr and "Traceback" not in r.stderr


def test_stats(corpus):
    r = run_cli("stats", corpus.root)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "docs" in out and "errors" in out and "tokens" in out
    assert "word count quantiles" in out and "top openings" in out
    assert "Once upon a" in out and "One rainy day" in out


def test_refusal_reads_as_english(corpus):
    r = run_cli("query", corpus.root, "INSERT INTO raw VALUES (1)")
    assert "an INSERT statement is refused" in r.stderr
    r = run_cli("query", corpus.root, "CREATE TABLE x AS SELECT 1")
    assert "a CREATE statement is refused" in r.stderr
