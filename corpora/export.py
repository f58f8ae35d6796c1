"""Export a corpus stage in the formats people share: a Hugging Face dataset folder, JSON lines,
or the `<|endoftext|>`-separated text TinyStories is published in.

- `hf`:    OUT/data/train-00000-of-0000N.parquet + OUT/README.md (dataset card with a YAML header):
           `datasets.load_dataset("parquet", data_dir=OUT)` and `load_dataset(OUT)` read it as is.
- `hf-disk`: the layout `Dataset.save_to_disk` writes (OUT/data-00000-of-0000N.arrow Arrow streams,
           state.json, dataset_info.json) + OUT/README.md: `datasets.load_from_disk(OUT)` reads it.
- `jsonl`: OUT/train.jsonl, one JSON object per document + OUT/README.md.
- `txt`:   OUT/train.txt, each document followed by "\\n<|endoftext|>\\n" + OUT/README.md. A document
           that itself contains the separator is written with it escaped (`<|endoftext\\|>`, see
           `corpora.readers.escape_separator`), so that no reader ever sees a document boundary
           inside a document; `tinyschool import --split sep` undoes the escape, which makes the
           round trip exact. Only kept documents are written in this format, and not an empty or
           whitespace-only one (it would read back as no document; such rows are counted).

Only documents are exported: failed rows (`error` set) are left out and counted, and so are rows an
annotated stage marks `keep = false` in the `txt` format (the `hf`/`jsonl` exports of `annotated`
keep them, with their `keep` and `drop_reason` columns, for people who study the filtering).
The export is written to a temporary folder next to OUT and renamed into place when complete.
"""
from __future__ import annotations

import datetime as _dt
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpora.card import dataset_card
from corpora.readers import DEFAULT_SEPARATOR, escape_separator
from corpora.schema import STAGES
from corpora.store import Corpus, CorpusError, read_shard_schema, swap_dir_into_place

FORMATS = ("hf", "hf-disk", "jsonl", "txt")
MARKER = ".tinyschool-export.json"

ProgressFn = Callable[[int, int], None]  # (rows done, rows total)


@dataclass
class ExportStats:
    format: str
    stage: str
    out: str
    rows: int = 0  # documents written
    files: list[str] = field(default_factory=list)
    failed_skipped: int = 0
    dropped_skipped: int = 0
    escaped: int = 0  # txt: documents whose separator was escaped
    blank_skipped: int = 0  # txt: empty or whitespace-only documents (they have no place in that format)
    bytes: int = 0
    grades: np.ndarray | None = None  # flesch_kincaid_grade of the exported documents, when the stage has it
    words: np.ndarray | None = None  # word_count of the exported documents, when the stage has it

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k not in ("grades", "words")}
        return d


def default_stage(corpus: Corpus) -> str:
    for s in ("clean", "annotated", "raw"):
        if corpus.count(s):
            return s
    raise CorpusError(f"{corpus.root}: the corpus has no documents in any stage")


def _json_default(v: Any) -> Any:
    if isinstance(v, (_dt.datetime, _dt.date)):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, _dt.timedelta):
        return v.total_seconds()
    raise TypeError(f"cannot write {type(v).__name__} as JSON")


def _prepare_out(out: Path, force: bool) -> Path:
    if out.exists():
        if out.is_file():
            raise CorpusError(f"{out}: is a file; --out must be a folder")
        if any(out.iterdir()):
            if not (out / MARKER).exists():
                raise CorpusError(f"{out}: exists, is not empty and is not a tinyschool export; refusing to replace it "
                                  "(even with --force); choose another --out")
            if not force:
                raise CorpusError(f"{out}: already holds an export; pass --force to replace it")
    tmp = out.parent / f".{out.name}.exporting"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def _filter(table: pa.Table, stage: str, fmt: str, stats: ExportStats) -> pa.Table:
    if "error" in table.column_names:
        ok = pc.is_null(table["error"])
        stats.failed_skipped += table.num_rows - pc.sum(ok.cast(pa.int64())).as_py() if table.num_rows else 0
        table = table.filter(ok)
    if fmt == "txt" and stage == "annotated" and "keep" in table.column_names:
        keep = pc.fill_null(table["keep"], False)
        stats.dropped_skipped += table.num_rows - pc.sum(keep.cast(pa.int64())).as_py() if table.num_rows else 0
        table = table.filter(keep)
    return table


def export_corpus(corpus: Corpus | str | Path, fmt: str, out: str | Path, stage: str | None = None,
                  columns: list[str] | None = None, force: bool = False, separator: str = DEFAULT_SEPARATOR,
                  progress: ProgressFn | None = None) -> ExportStats:
    corpus = corpus if isinstance(corpus, Corpus) else Corpus(corpus)
    manifest = corpus.manifest()
    if fmt not in FORMATS:
        raise CorpusError(f"unknown export format {fmt!r} (one of {', '.join(FORMATS)})")
    stage = stage or default_stage(corpus)
    if stage not in STAGES:
        raise CorpusError(f"unknown stage {stage!r} (one of {', '.join(STAGES)})")
    names = corpus.shard_names(stage)
    if not names:
        raise CorpusError(f"{corpus.root}: stage {stage!r} has no shards (run the stage first, or pick --stage)")
    corpus.check_files(stage)  # a damaged shard stops the export before anything is written
    if fmt == "txt" and separator in ("", "\n"):
        raise CorpusError("--separator must be a non-empty string other than a newline")
    if fmt == "txt" and len(separator) < 2:
        raise CorpusError("--separator must be at least two characters (so that it can be escaped inside documents)")
    out = Path(out)
    tmp = _prepare_out(out, force)
    stats = ExportStats(fmt, stage, str(out))
    total = corpus.count(stage)
    done = 0
    grades: list[np.ndarray] = []
    words: list[np.ndarray] = []
    try:
        schema_names = read_shard_schema(corpus.shard_path(stage, names[0])).names
        if columns:
            unknown = [c for c in columns if c not in schema_names]
            if unknown:
                raise CorpusError(f"stage {stage!r} has no column {unknown[0]!r} (columns: {', '.join(schema_names)})")
        want = columns or schema_names
        if fmt == "txt":
            want = ["text"]
        needed = list(dict.fromkeys(want + [c for c in ("error", "keep", "flesch_kincaid_grade", "word_count")
                                            if c in schema_names]))
        txt = jsonl = None
        if fmt == "txt":
            txt = open(tmp / "train.txt", "w", encoding="utf-8", newline="")
        elif fmt == "jsonl":
            jsonl = open(tmp / "train.jsonl", "w", encoding="utf-8", newline="")
        parts: list[Path] = []
        for name in names:
            table = corpus.read_shard(stage, name, columns=[c for c in needed if c in _shard_columns(corpus, stage, name)])
            done += table.num_rows
            table = _filter(table, stage, fmt, stats)
            if "flesch_kincaid_grade" in table.column_names:
                grades.append(pc.cast(table["flesch_kincaid_grade"], pa.float64()).to_numpy(zero_copy_only=False))
            if "word_count" in table.column_names:
                words.append(pc.cast(table["word_count"], pa.float64()).to_numpy(zero_copy_only=False))
            table = table.select([c for c in want if c in table.column_names])
            stats.rows += table.num_rows
            if fmt == "hf" and table.num_rows:
                p = tmp / "data" / f".part-{len(parts):05d}.parquet"
                p.parent.mkdir(exist_ok=True)
                pq.write_table(table, p, compression="zstd", row_group_size=8192)
                parts.append(p)
            elif fmt == "hf-disk" and table.num_rows:
                p = tmp / f".part-{len(parts):05d}.arrow"
                with pa.OSFile(str(p), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
                    for batch in table.to_batches(1000):  # the batch size `datasets` writes
                        w.write_batch(batch)
                parts.append(p)
            elif fmt == "jsonl":
                for batch in table.to_batches(8192):
                    jsonl.write("".join(json.dumps(r, ensure_ascii=False, default=_json_default) + "\n"
                                        for r in batch.to_pylist()))
            elif fmt == "txt":
                for text in table["text"].to_pylist():
                    if not text or text.isspace():  # would read back as no document at all
                        stats.blank_skipped += 1
                        stats.rows -= 1
                        continue
                    safe = escape_separator(text, separator)
                    stats.escaped += safe != text
                    txt.write(safe + "\n" + separator + "\n")
            if progress:
                progress(done, total)
        for f in (txt, jsonl):
            if f is not None:
                f.close()
        if stats.rows == 0:
            raise CorpusError(f"{corpus.root}: nothing to export: stage {stage!r} has no documents left after leaving out "
                              f"{stats.failed_skipped} failed and {stats.dropped_skipped + stats.blank_skipped} other rows")
        if fmt == "hf":
            n = len(parts)
            for k, p in enumerate(parts):
                p.rename(p.parent / f"train-{k:05d}-of-{n:05d}.parquet")
        elif fmt == "hf-disk":
            _finish_saved_layout(tmp, parts, manifest)
        stats.grades = np.concatenate(grades) if grades else None
        stats.words = np.concatenate(words) if words else None
        stats.files = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file()) + ["README.md"]
        (tmp / "README.md").write_text(dataset_card(corpus, manifest, stats), encoding="utf-8")
        stats.files = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
        stats.bytes = sum((tmp / f).stat().st_size for f in stats.files)
        (tmp / MARKER).write_text(json.dumps({"corpus": str(corpus.root), **stats.as_dict()}, indent=2, sort_keys=True) + "\n")
        swap_dir_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return stats


def _finish_saved_layout(tmp: Path, parts: list[Path], manifest: dict[str, Any]) -> None:
    """Name the Arrow files and write the state.json and dataset_info.json of `save_to_disk`."""
    import hashlib

    n = len(parts)
    names = []
    fingerprint = hashlib.sha256()
    for k, p in enumerate(parts):
        name = f"data-{k:05d}-of-{n:05d}.arrow"
        p.rename(tmp / name)
        names.append(name)
        with open(tmp / name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                fingerprint.update(block)
    state = {"_data_files": [{"filename": x} for x in names], "_fingerprint": fingerprint.hexdigest()[:16],
             "_format_columns": None, "_format_kwargs": {}, "_format_type": None, "_output_all_columns": False,
             "_split": "train"}
    recipe = manifest.get("recipe") or {}
    info = {"description": str(recipe.get("description") or ""), "license": str(recipe.get("license") or "unknown"),
            "citation": "", "homepage": "", "features": None}
    (tmp / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    (tmp / "dataset_info.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")


def _shard_columns(corpus: Corpus, stage: str, name: str) -> list[str]:
    return read_shard_schema(corpus.shard_path(stage, name)).names


