"""Issue 2.7: the store writes zstd shards atomically with a manifest, and reports damage by name."""
import json

import pyarrow.parquet as pq
import pytest

from conftest import run_cli
from corpora import Corpus, CorruptShardError, raw_table, RAW_SCHEMA, SCHEMA_VERSION
from corpora.store import sha256_file


def records(n, start=0):
    return [{"id": f"id{i}", "text": f"story {i}", "prompt": "p", "template": "t", "slots": {"k": i},
             "backend": "test", "model": "m", "sampling": {"temperature": 0.5, "top_p": 1.0, "max_tokens": 5,
                                                           "seed": i, "repetition_penalty": 1.0},
             "finish_reason": "stop", "prompt_tokens": 1, "completion_tokens": 2, "latency_s": 0.1,
             "sample_index": i, "recipe": "r"} for i in range(start, start + n)]


def test_write_shard_manifest_and_schema(tmp_path):
    c = Corpus(tmp_path / "c").init("c", {"name": "c", "count": 7})
    entry = c.write_shard("raw", "part-00000", raw_table(records(5)))
    c.write_shard("raw", "part-00001", raw_table(records(2, 5)))
    m = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert m["schema_version"] == SCHEMA_VERSION and m["recipe"]["count"] == 7 and m["package_version"]
    assert m["stages"]["raw"]["shards"]["part-00000"] == entry
    assert entry["rows"] == 5 and len(entry["xxh3_128"]) == 32
    path = tmp_path / "c" / "raw" / "part-00000.parquet"
    md = pq.ParquetFile(path).metadata
    assert md.row_group(0).column(0).compression == "ZSTD"
    t = c.read_stage("raw")
    assert t.schema.equals(RAW_SCHEMA) and t.num_rows == 7
    assert json.loads(t["slots"][0].as_py()) == {"k": 0}
    assert not list((tmp_path / "c" / "raw").glob(".*tmp*")), "no temporary files left behind"
    assert c.verify() == []


def test_same_table_same_bytes(tmp_path):
    a = Corpus(tmp_path / "a").init("a")
    b = Corpus(tmp_path / "b").init("b")
    ea = a.write_shard("raw", "part-00000", raw_table(records(4)))
    eb = b.write_shard("raw", "part-00000", raw_table(records(4)))
    assert ea["xxh3_128"] == eb["xxh3_128"]


def test_manifests_with_sha256_checksums_are_still_verified(tmp_path):
    """Corpora written before the store moved to XXH3 record sha256; verify checks those too."""
    c = Corpus(tmp_path / "c").init("c")
    c.write_shard("raw", "part-00000", raw_table(records(3)))
    path = tmp_path / "c" / "raw" / "part-00000.parquet"

    def legacy(m):
        e = m["stages"]["raw"]["shards"]["part-00000"]
        e["sha256"] = sha256_file(path)
        del e["xxh3_128"]

    c.update_manifest(legacy)
    assert c.verify() == []
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes
    path.write_bytes(bytes(data))
    assert any("checksum does not match" in p for p in c.verify())


def test_truncated_and_corrupt_shards_are_named(tmp_path):
    c = Corpus(tmp_path / "c").init("c")
    c.write_shard("raw", "part-00000", raw_table(records(50)))
    c.write_shard("raw", "part-00001", raw_table(records(50, 50)))
    p0 = tmp_path / "c" / "raw" / "part-00000.parquet"
    p1 = tmp_path / "c" / "raw" / "part-00001.parquet"
    data = p0.read_bytes()
    p0.write_bytes(data[: len(data) // 2])  # truncated
    blob = bytearray(p1.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # one flipped byte
    p1.write_bytes(bytes(blob))
    with pytest.raises(CorruptShardError, match="part-00000.parquet"):
        c.read_shard("raw", "part-00000")
    problems = c.verify()
    assert len(problems) == 2
    assert "part-00000.parquet" in problems[0] and "truncated" in problems[0]
    assert "part-00001.parquet" in problems[1] and "checksum" in problems[1]
    r = run_cli("verify", tmp_path / "c")
    assert r.returncode == 1
    assert "part-00000.parquet" in r.stdout and "part-00001.parquet" in r.stdout and "Traceback" not in r.stderr


def test_verify_ok_and_not_a_corpus(tmp_path):
    c = Corpus(tmp_path / "c").init("c")
    c.write_shard("raw", "part-00000", raw_table(records(3)))
    r = run_cli("verify", tmp_path / "c")
    assert r.returncode == 0 and "ok" in r.stdout
    r = run_cli("verify", tmp_path / "nothing")
    assert r.returncode == 1 and "not a corpus" in r.stderr and "Traceback" not in r.stderr


def test_a_file_not_in_the_manifest_is_invisible(tmp_path):
    c = Corpus(tmp_path / "c").init("c")
    c.write_shard("raw", "part-00000", raw_table(records(3)))
    (tmp_path / "c" / "raw" / "part-00009.parquet").write_bytes(b"half-written junk")
    assert c.count("raw") == 3 and c.read_stage("raw").num_rows == 3
