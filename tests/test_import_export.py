"""Issue 8: bring your own corpus — `tinyschool import` and `tinyschool export`."""
import gzip
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from conftest import GSM8K, run_cli
from corpora import RAW_SCHEMA, Corpus
from corpora.export import export_corpus
from corpora.importer import ImportInputError, ReadOptions, doc_id, import_corpus
from corpora.readers import escape_separator, unescape_separator

SEP = "<|endoftext|>"

# documents that are hard to carry through a text file
TRICKY = [
    "Once upon a time there was a cat.",
    "A story\nover two lines.",
    "\nstarts with a newline",
    "ends with a newline\n",
    "\n\ntwo newlines around\n\n",
    f"contains the separator {SEP} in the middle",
    f"{SEP}",
    "already escaped <|endoftext\\|> and <|endoftext\\\\|> forms",
    "unicode: café, 東京, emoji 🐈, and a \u2028 line separator",
    "windows\r\nline end inside",
    "  leading and trailing spaces  ",
    "a tab\tand a backslash \\ and <|endoftext| half",
]


def raw_rows(path, columns=("id", "text", "meta", "backend", "template", "sample_index", "error")):
    return Corpus(path).read_stage("raw", columns=list(columns)).to_pylist()


def write_jsonl(path: Path, rows, opener=open):
    with opener(path, "wt", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


# ---- reading ---------------------------------------------------------------------------------------

def test_text_modes_ids_and_provenance(tmp_path):
    src = tmp_path / "stories.txt"
    src.write_text("first doc\n\nsecond doc, line 1\nsecond doc, line 2\r\n   \nthird\n")
    import_corpus(src, tmp_path / "lines")
    rows = raw_rows(tmp_path / "lines")
    assert [r["text"] for r in rows] == ["first doc", "second doc, line 1", "second doc, line 2", "third"]
    assert [json.loads(r["meta"]) for r in rows] == [{"line": n, "source": "stories.txt"} for n in (1, 3, 4, 6)]
    assert {(r["backend"], r["template"]) for r in rows} == {("import", "import")}
    assert [r["id"] for r in rows] == [doc_id("stories.txt", n) for n in (1, 3, 4, 6)]
    assert [r["sample_index"] for r in rows] == [0, 1, 2, 3]
    assert Corpus(tmp_path / "lines").read_stage("raw").schema.equals(RAW_SCHEMA)

    import_corpus(src, tmp_path / "blank", ReadOptions(split="blank"))
    rows = raw_rows(tmp_path / "blank")
    assert [r["text"] for r in rows] == ["first doc", "second doc, line 1\nsecond doc, line 2", "third"]
    assert [json.loads(r["meta"])["line"] for r in rows] == [1, 3, 6]

    ts = tmp_path / "ts.txt"
    ts.write_text(f"Story one.\nMore.\n{SEP}\nStory two.\n{SEP}\n\n{SEP}\nStory three.\n{SEP}\n")
    import_corpus(ts, tmp_path / "sep", ReadOptions(split="sep"))
    rows = raw_rows(tmp_path / "sep")
    assert [r["text"] for r in rows] == ["Story one.\nMore.", "Story two.", "Story three."]
    assert [json.loads(r["meta"]) for r in rows] == [{"doc": 0, "line": 1, "source": "ts.txt"},
                                                     {"doc": 1, "line": 4, "source": "ts.txt"},
                                                     {"doc": 3, "line": 8, "source": "ts.txt"}]


@pytest.mark.parametrize("split", ["line", "blank", "sep"])
def test_block_boundaries_do_not_change_documents(tmp_path, split):
    """Tiny blocks (documents cut across reads, records longer than a block) give the same corpus bytes."""
    docs = [f"doc {i} " + "word " * (i % 7) + ("\nsecond line" if split != "line" and i % 3 == 0 else "") for i in range(200)]
    glue = {"line": "\n", "blank": "\n\n", "sep": f"\n{SEP}\n"}[split]
    src = tmp_path / "in.txt"
    src.write_text(glue.join(docs) + "\n")
    import_corpus(src, tmp_path / "big", ReadOptions(split=split))
    import_corpus(src, tmp_path / "small", ReadOptions(split=split, block_bytes=37), shard_rows=50)
    big, small = raw_rows(tmp_path / "big"), raw_rows(tmp_path / "small")
    assert [r["text"] for r in big] == docs
    assert big == small
    assert len(Corpus(tmp_path / "small").shard_names("raw")) >= 4


def test_memory_mapped_blocks_end_where_streamed_blocks_end():
    """Uncompressed files are memory-mapped, compressed ones streamed: both cut the same blocks."""
    import io
    import mmap
    import random

    from corpora.readers import byte_blocks, mmap_blocks

    rng = random.Random(5)
    for delims in [(b"\n",), (b"\n\n", b"\n\r\n"), (b"<|endoftext|>",)]:
        for _ in range(30):
            data = b"".join(rng.choice([b"a", b"bb ", b"\n", b"\r\n", b"\n\n", b"<|endoftext|>", b"<|end"])
                            for _ in range(rng.randint(1, 400)))
            block = rng.choice([1, 5, 13, 64, 1000])
            streamed = [bytes(b) for b in byte_blocks(io.BytesIO(data), block, delims)]
            with mmap.mmap(-1, len(data)) as mm:
                mm.write(data)
                start = rng.randint(0, len(data) - 1)
                mapped = [bytes(b) for b in mmap_blocks(mm, 0, block, delims)]
                from_start = [bytes(b) for b in mmap_blocks(mm, start, block, delims)]
            assert mapped == streamed and b"".join(mapped) == data
            assert from_start == [bytes(b) for b in byte_blocks(io.BytesIO(data[start:]), block, delims)]


@pytest.mark.parametrize("codec", ["none", "snappy", "lz4", "zstd"])
def test_shard_codec_is_the_users_choice_and_parallel_writers_change_no_byte(tmp_path, codec):
    src = write_jsonl(tmp_path / "in.jsonl", [{"text": f"story {i} " * (i % 9 + 1)} for i in range(2000)])
    opts = ReadOptions(block_bytes=8192)
    one = import_corpus(src, tmp_path / "one", opts, name="c", shard_rows=300, compression=codec, writers=1)
    two = import_corpus(src, tmp_path / "two", opts, name="c", shard_rows=300, compression=codec, writers=2)
    a, b = Corpus(tmp_path / "one"), Corpus(tmp_path / "two")
    assert one.shards == two.shards >= 6 and a.shard_entries("raw") == b.shard_entries("raw")
    assert a.verify() == [] and [r["text"] for r in raw_rows(tmp_path / "two")] == [f"story {i} " * (i % 9 + 1) for i in range(2000)]
    md = pq.ParquetFile(tmp_path / "two" / "raw" / "part-00000.parquet").metadata
    text_col = md.schema.to_arrow_schema().get_field_index("text")
    want = {"none": "UNCOMPRESSED"}.get(codec, codec.upper())
    assert md.row_group(0).column(text_col).compression == want


def test_jsonl_compressed_and_id_field(tmp_path):
    rows = [{"id": f"doc-{i}", "text": f"story {i}", "other": {"nested": [i]}} for i in range(300)]
    write_jsonl(tmp_path / "s.jsonl", rows)
    write_jsonl(tmp_path / "s.jsonl.gz", rows, gzip.open)
    with open(tmp_path / "s.jsonl.zst", "wb") as f:
        f.write(zstandard.ZstdCompressor().compress((tmp_path / "s.jsonl").read_bytes()))
    os.rename(tmp_path / "s.jsonl.gz", tmp_path / "gzipped.data")  # detected by magic bytes, not by name
    for name, src, fmt in [("plain", "s.jsonl", None), ("gz", "gzipped.data", "jsonl"), ("zst", "s.jsonl.zst", None)]:
        import_corpus(tmp_path / src, tmp_path / name, ReadOptions(id_field="id", block_bytes=1000), fmt=fmt)
        got = raw_rows(tmp_path / name)
        assert [r["text"] for r in got] == [r["text"] for r in rows], name
        assert [r["id"] for r in got] == [r["id"] for r in rows], name
        assert json.loads(got[-1]["meta"])["line"] == 300


def test_gsm8k_jsonl_with_a_chosen_text_field(tmp_path):
    if not GSM8K.exists():
        pytest.skip("shared GSM8K sample not present")
    stats = import_corpus(GSM8K, tmp_path / "gsm", ReadOptions(text_field="question"))
    n_lines = sum(1 for line in GSM8K.open() if line.strip())
    assert stats.docs == n_lines and stats.failed == 0
    first = json.loads(GSM8K.open().readline())
    assert raw_rows(tmp_path / "gsm")[0]["text"] == first["question"]


def test_parquet_repo_folder_and_save_to_disk(tmp_path):
    datasets = pytest.importorskip("datasets")
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    for k in range(2):
        t = pa.table({"story": [f"part {k} story {i}" for i in range(1000)], "n": list(range(1000))})
        pq.write_table(t, repo / "data" / f"train-0000{k}-of-00002.parquet", row_group_size=300)
    (repo / "README.md").write_text("# a dataset card, not data\n")
    stats = import_corpus(repo, tmp_path / "from_repo", ReadOptions(text_field="story", block_bytes=4096))
    rows = raw_rows(tmp_path / "from_repo")
    assert stats.files == 2 and len(rows) == 2000
    assert rows[1500]["text"] == "part 1 story 500"
    assert json.loads(rows[1500]["meta"]) == {"row": 500, "source": "data/train-00001-of-00002.parquet"}

    ds = datasets.Dataset.from_dict({"text": [f"saved story {i}" for i in range(700)], "uid": [f"u{i}" for i in range(700)]})
    dd = datasets.DatasetDict({"train": ds, "validation": ds.select(range(5))})
    dd.save_to_disk(str(tmp_path / "saved"))
    with pytest.raises(ImportInputError, match="'u0' names 2 documents, first at train/.* and validation/"):
        import_corpus(tmp_path / "saved", tmp_path / "from_disk", ReadOptions(id_field="uid"))  # the splits overlap
    import_corpus(tmp_path / "saved", tmp_path / "from_disk")
    rows = raw_rows(tmp_path / "from_disk")
    assert len(rows) == 705 and rows[699]["text"] == "saved story 699"
    assert json.loads(rows[700]["meta"])["source"].startswith("validation/")
    import_corpus(tmp_path / "saved", tmp_path / "train_only", ReadOptions(id_field="uid"), include=["train/*"])
    rows = raw_rows(tmp_path / "train_only")
    assert len(rows) == 700 and rows[0]["id"] == "u0"


def test_resume_after_interruption_gives_the_same_bytes(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [{"text": f"document number {i} " * 5} for i in range(3000)])
    opts = ReadOptions(block_bytes=4096)
    import_corpus(src, tmp_path / "whole", opts, shard_rows=500, name="c")

    calls = []

    def stop_midway(done, total):
        calls.append(done)
        if done > total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_corpus(src, tmp_path / "resumed", opts, shard_rows=500, name="c", progress=stop_midway)
    assert not (tmp_path / "resumed").exists(), "nothing at --out until the import is complete"
    partial = Corpus(tmp_path / ".resumed.importing")
    assert 0 < len(partial.shard_names("raw")) < 6
    stats = import_corpus(src, tmp_path / "resumed", opts, shard_rows=500, name="c")
    assert stats.status == "resumed" and stats.resumed_shards > 0 and stats.docs == 3000
    a, b = Corpus(tmp_path / "whole"), Corpus(tmp_path / "resumed")
    assert a.shard_entries("raw") == b.shard_entries("raw")  # same files, same checksums
    assert b.verify() == [] and not (tmp_path / ".resumed.importing").exists()


# ---- bad input ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_bad_input_errors_name_file_and_line_and_write_nothing(tmp_path):
    good = [json.dumps({"text": f"ok {i}"}) for i in range(5)]
    cases = {
        "invalid.jsonl": ("\n".join(good[:3] + ['{"text": "broken'] + good[3:]) + "\n", "invalid.jsonl:4: invalid JSON"),
        "missing.jsonl": ("\n".join(good[:2] + ['{"body": "x"}']) + "\n", "missing.jsonl:3: text field 'text' is missing"),
        "number.jsonl": ("\n".join(good[:1] + ['{"text": 5}']) + "\n", "number.jsonl:2: text field 'text' is a int"),
        "empty.txt": ("", "empty.txt: empty file"),
        "blank.txt": ("\n  \n\n", "blank.txt: no documents found"),
        "array.json": ('[{"text": "a"}]\n', "array.json:1: a JSON array"),
    }
    for name, (body, expect) in cases.items():
        src = tmp_path / name
        src.write_text(body)
        out = tmp_path / f"out-{name}"
        r = run_cli("import", src, "--out", out)
        assert r.returncode != 0, name
        err = " ".join(r.stderr.split())
        assert expect in err, (name, r.stderr)
        assert len([line for line in r.stderr.splitlines() if "error:" in line]) == 1
        assert not out.exists() and not list(tmp_path.glob(f".out-{name}*")), f"{name}: half-written corpus left behind"

    pq.write_table(pa.table({"body": ["a"]}), tmp_path / "nocol.parquet")
    r = run_cli("import", tmp_path / "nocol.parquet", "--out", tmp_path / "o")
    assert r.returncode != 0 and "nocol.parquet: no text column 'text' (columns: body" in " ".join(r.stderr.split())


def test_repeated_ids_from_the_id_field_are_refused_with_both_places(tmp_path):
    rows = [{"id": f"d{i % 50 if i in (10, 60, 70) else i}", "text": f"t {i}"} for i in range(100)]
    src = write_jsonl(tmp_path / "ids.jsonl", rows)
    out = tmp_path / "o"
    with pytest.raises(ImportInputError) as e:
        import_corpus(src, out, ReadOptions(id_field="id", block_bytes=500), shard_rows=30)
    msg = str(e.value)
    assert "'d10' names 2 documents, first at ids.jsonl:11 and ids.jsonl:61; 1 more ids are repeated" in msg
    assert not out.exists() and not list(tmp_path.glob(".o.importing*"))
    assert import_corpus(src, out).docs == 100  # generated ids are unique by construction


@pytest.mark.slow
def test_skip_bad_records_failed_rows_and_undecodable_bytes_are_replaced(tmp_path):
    src = tmp_path / "mixed.jsonl"
    src.write_bytes(b'{"text": "fine"}\n{"text": "oops\n{"text": "bad byte \xff here"}\n{"title": "no text"}\n{"text": "end \\ud800"}\n')
    r = run_cli("import", src, "--out", tmp_path / "c", "--skip-bad")
    assert r.returncode == 0, r.stderr
    rows = raw_rows(tmp_path / "c")
    assert [r["text"] for r in rows] == ["fine", "", "bad byte \ufffd here", "", "end \ufffd"]  # a lone surrogate too
    failed = [r for r in rows if r["error"]]
    assert [json.loads(r["meta"])["line"] for r in failed] == [2, 4]
    assert "invalid JSON" in failed[0]["error"] and "'text' is missing" in failed[1]["error"]
    assert json.loads(rows[2]["meta"])["decode_errors"] == 1
    m = Corpus(tmp_path / "c").manifest()["stages"]["raw"]["info"]
    assert m["failed"] == 2 and m["replaced_bytes"] == 2
    # the corpus works with the rest of the tool
    q = run_cli("query", tmp_path / "c", "SELECT count(*) FILTER (WHERE error IS NULL) AS ok FROM raw", "--format", "json")
    assert q.returncode == 0 and json.loads(q.stdout)["ok"] == 3
    assert run_cli("verify", tmp_path / "c").returncode == 0

    txt = tmp_path / "latin1.txt"
    txt.write_bytes("caf\xe9 au lait\nplain line\n".encode("latin-1"))
    stats = import_corpus(txt, tmp_path / "t")
    assert stats.replaced == 1 and raw_rows(tmp_path / "t")[0]["text"] == "caf\ufffd au lait"


@pytest.mark.slow
def test_existing_corpus_is_kept_refused_or_replaced(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [{"text": "from a"}])
    b = write_jsonl(tmp_path / "b.jsonl", [{"text": "from b"}])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "x"}\nnot json\n')
    out = tmp_path / "c"
    assert run_cli("import", a, "--out", out).returncode == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    again = run_cli("import", a, "--out", out)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    r = run_cli("import", b, "--out", out)
    assert r.returncode != 0 and "already holds a corpus" in r.stderr and "--force" in r.stderr
    r = run_cli("import", bad, "--out", out, "--force")
    assert r.returncode != 0 and "bad.jsonl:2" in r.stderr
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before, "a failed import changed the corpus"
    assert run_cli("import", b, "--out", out, "--force").returncode == 0
    assert [r["text"] for r in raw_rows(out)] == ["from b"]
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    r = run_cli("import", a, "--out", other, "--force")
    assert r.returncode != 0 and "not a corpus" in r.stderr and (other / "notes.txt").exists()


# ---- export ------------------------------------------------------------------------------------------

def _annotated_corpus(tmp_path) -> Path:
    """An imported corpus plus an annotated stage as the cleaning stage writes it (keep, drop_reason, metrics)."""
    src = write_jsonl(tmp_path / "src.jsonl", [{"text": t} for t in TRICKY] + [{"text": f"filler story {i}"} for i in range(8)])
    out = tmp_path / "corpus"
    import_corpus(src, out, license="CC-BY-4.0")
    c = Corpus(out)
    raw = c.read_stage("raw")
    n = raw.num_rows
    keep = [i % 5 != 4 for i in range(n)]
    reasons = [None if k else ("too_short" if i % 2 else "repetition") for i, k in enumerate(keep)]
    ann = raw.append_column("flesch_kincaid_grade", pa.array([float(i % 14) - 0.5 for i in range(n)]))
    ann = ann.append_column("word_count", pa.array([len(t.split()) for t in raw["text"].to_pylist()], pa.int64()))
    ann = ann.append_column("keep", pa.array(keep)).append_column("drop_reason", pa.array(reasons, pa.string()))
    c.write_shard("annotated", "part-00000", ann)
    c.mark_complete("annotated")
    c.write_shard("clean", "part-00000", ann.filter(pa.array(keep)))
    c.mark_complete("clean")
    return out


@pytest.mark.slow
def test_export_hf_loads_with_datasets_and_has_a_card(tmp_path):
    datasets = pytest.importorskip("datasets")
    corpus = _annotated_corpus(tmp_path)
    out = tmp_path / "hf"
    r = run_cli("export", corpus, "--format", "hf", "--out", out)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (out / "data").iterdir()) == ["train-00000-of-00001.parquet"]
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    ds = datasets.load_dataset("parquet", data_dir=str(out), cache_dir=str(tmp_path / "hf-cache"))["train"]
    clean = Corpus(corpus).read_stage("clean")
    assert ds["text"] == clean["text"].to_pylist() and ds.num_rows == clean.num_rows
    assert datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf-cache2"))["train"]["id"] == clean["id"].to_pylist()

    card = (out / "README.md").read_text()
    head = card.split("---")[1]
    assert "license: cc-by-4.0" in head and "path: data/train-*" in head
    assert "## Recipe" in card and "## Model" in card and "## Readability" in card
    ann = Corpus(corpus).read_stage("annotated").to_pylist()
    for reason in ("too_short", "repetition"):
        n = sum(1 for a in ann if a["drop_reason"] == reason)
        assert f"| {reason} | {n} |" in card
    assert f"| kept | {sum(a['keep'] for a in ann)} |" in card
    grades = [a["flesch_kincaid_grade"] for a in ann if a["keep"]]
    assert f"| < 1 | {sum(g < 1 for g in grades)} |" in card
    # same corpus, same bytes; an earlier export is only replaced with --force
    r = run_cli("export", corpus, "--format", "hf", "--out", out)
    assert r.returncode != 0 and "--force" in r.stderr
    again = tmp_path / "hf2"
    assert run_cli("export", corpus, "--format", "hf", "--out", again).returncode == 0
    for p in ("README.md", "data/train-00000-of-00001.parquet"):
        assert (out / p).read_bytes() == (again / p).read_bytes()


def test_card_without_annotation_and_for_a_generated_recipe(tmp_path):
    c = Corpus(tmp_path / "gen").init("gen", {"name": "gen", "license": "CDLA-Sharing-1.0 (generated text)",
                                              "backend": {"name": "local", "model": "SmolLM2-135M-Instruct"}})
    from corpora import raw_table
    c.write_shard("raw", "part-00000", raw_table([{"id": "a", "text": "A cat sat.", "backend": "local",
                                                   "model": "SmolLM2-135M-Instruct"},
                                                  {"id": "b", "text": "", "backend": "local", "model": "SmolLM2-135M-Instruct",
                                                   "error": "timeout", "error_kind": "timeout"}]))
    stats = export_corpus(c, "jsonl", tmp_path / "j")
    assert stats.rows == 1 and stats.failed_skipped == 1
    assert [json.loads(line)["id"] for line in (tmp_path / "j" / "train.jsonl").open()] == ["a"]
    card = (tmp_path / "j" / "README.md").read_text()
    assert 'license_name: "CDLA-Sharing-1.0 (generated text)"' in card
    assert "model `SmolLM2-135M-Instruct`" in card and "Not measured" in card and "| raw rows that failed | 1 |" in card


@pytest.mark.slow
def test_txt_round_trip_keeps_every_kept_document_byte_for_byte(tmp_path):
    corpus = _annotated_corpus(tmp_path)
    r = run_cli("export", corpus, "--format", "txt", "--out", tmp_path / "txt", "--stage", "annotated")
    assert r.returncode == 0, r.stderr
    body = (tmp_path / "txt" / "train.txt").read_text(encoding="utf-8")
    ann = Corpus(corpus).read_stage("annotated").to_pylist()
    kept = [a["text"] for a in ann if a["keep"]]
    assert body.count(f"\n{SEP}\n") == len(kept), "one separator per kept document, none from inside a document"
    back = tmp_path / "back"
    r = run_cli("import", tmp_path / "txt" / "train.txt", "--out", back, "--split", "sep")
    assert r.returncode == 0, r.stderr
    assert [x["text"] for x in raw_rows(back)] == kept
    assert any(SEP in t for t in kept)
    # jsonl round trip too
    assert run_cli("export", corpus, "--format", "jsonl", "--out", tmp_path / "jl").returncode == 0
    assert run_cli("import", tmp_path / "jl" / "train.jsonl", "--out", tmp_path / "back2", "--id-field", "id").returncode == 0
    clean = Corpus(corpus).read_stage("clean")
    assert [(x["id"], x["text"]) for x in raw_rows(tmp_path / "back2")] == list(zip(clean["id"].to_pylist(),
                                                                                     clean["text"].to_pylist()))


def test_separator_escape_is_bijective():
    samples = TRICKY + ["<|endoftext\\\\\\|>", "<|endoftext|><|endoftext\\|>", "no separator", ""]
    for s in samples:
        e = escape_separator(s)
        assert SEP not in e and unescape_separator(e) == s
    assert len({escape_separator(s) for s in samples}) == len(set(samples))


def test_export_hf_disk_loads_with_load_from_disk_and_imports_back(tmp_path):
    datasets = pytest.importorskip("datasets")
    corpus = _annotated_corpus(tmp_path)
    stats = export_corpus(corpus, "hf-disk", tmp_path / "disk", stage="annotated")
    ann = Corpus(corpus).read_stage("annotated")
    assert stats.rows == ann.num_rows
    ds = datasets.load_from_disk(str(tmp_path / "disk"))
    assert ds["text"] == ann["text"].to_pylist() and ds["keep"] == ann["keep"].to_pylist()
    import_corpus(tmp_path / "disk", tmp_path / "back", ReadOptions(id_field="id"))
    assert [(r["id"], r["text"]) for r in raw_rows(tmp_path / "back")] == list(zip(ann["id"].to_pylist(),
                                                                                    ann["text"].to_pylist()))


def test_truncated_or_damaged_compressed_input_is_a_clear_error(tmp_path):
    import random

    rng = random.Random(0)
    body = "".join(json.dumps({"text": " ".join(str(rng.random()) for _ in range(20))}) + "\n" for _ in range(2000))
    packed = gzip.compress(body.encode())
    (tmp_path / "cut.jsonl.gz").write_bytes(packed[: len(packed) // 2])
    with pytest.raises(ImportInputError, match=r"cut\.jsonl\.gz: cannot read it \(EOFError"):
        import_corpus(tmp_path / "cut.jsonl.gz", tmp_path / "c")
    (tmp_path / "bad.zst").write_bytes(b"\x28\xb5\x2f\xfd" + b"garbage" * 10)
    with pytest.raises(ImportInputError, match=r"bad\.zst: cannot decompress it"):
        import_corpus(tmp_path / "bad.zst", tmp_path / "c", fmt="text")
    assert not (tmp_path / "c").exists() and not list(tmp_path.glob(".c.*"))
