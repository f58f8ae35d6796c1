"""Import existing text into a corpus's `raw` stage: streaming, resumable, all or nothing.

The import writes into a temporary corpus folder next to the target (`.<name>.importing`) and
renames it into place only when every file has been read, so a bad line or a crash never leaves a
half-written corpus at --out, and an existing corpus there stays as it was until the new one is
complete. Shards are written as the input streams by (flat memory); each shard records where the
input continues, so re-running an interrupted import picks up after the last shard written.

Every document gets `backend = template = "import"`, an id that is a hash of the source file's
name and the document's position (or the value of a field the user names), and its provenance in
`meta` (`{"line": 12, "source": "train.jsonl"}`, `{"row": 5, ...}` for Parquet and Arrow).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from corpora.readers import Chunk, ReadOptions, read_chunks
from corpora.schema import RAW_SCHEMA, raw_table
from corpora.sources import ImportInputError, SourceFile, find_sources
from corpora.store import CHECKSUM, Corpus, CorpusError, _fsync_dir, swap_dir_into_place

BACKEND = "import"
TEMPLATE = "import"
MAX_ERRORS_KEPT = 20

ProgressFn = Callable[[int, int], None]  # (bytes done, bytes total)


@dataclass
class ImportStats:
    status: str = "imported"  # imported | resumed | unchanged
    files: int = 0
    docs: int = 0
    failed: int = 0
    replaced: int = 0  # undecodable byte sequences replaced by U+FFFD
    skipped_blank: int = 0
    bytes_total: int = 0
    shards: int = 0
    resumed_shards: int = 0
    seconds: float = 0.0
    per_file: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # the first few failed rows, "file:line: why"

    def counters(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("docs", "failed", "replaced", "skipped_blank", "per_file", "errors")}


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_HEX2 = np.frombuffer(b"".join(b"%02x" % i for i in range(256)), np.uint16)


def _mix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer: a bijection of uint64 that scatters neighbouring inputs."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def doc_ids(source_name: str, positions: np.ndarray) -> pa.Array:
    """16-hex-digit ids from the source name and positions, vectorised: mix64(h(name) + pos * golden).

    For one source the map from position to id is a bijection, so ids within a file never collide.
    """
    base = np.uint64(int.from_bytes(hashlib.blake2b(source_name.encode(), digest_size=8).digest(), "big"))
    with np.errstate(over="ignore"):
        h = _mix64(base + np.asarray(positions, np.uint64) * _GOLDEN)
    data = _HEX2[h.astype(">u8").view(np.uint8)].tobytes()  # two hex digits per byte, most significant first
    n = len(h)
    offsets = np.arange(0, 16 * n + 1, 16, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def doc_id(source_name: str, position: int) -> str:
    return doc_ids(source_name, np.asarray([position]))[0].as_py()


def _repeat(value: Any, n: int, type_: pa.DataType) -> pa.Array:
    if value is None:
        return pa.nulls(n, type_)
    return pa.array([value], type_).take(pa.array(np.zeros(n, np.int64)))


def _meta_column(sf: SourceFile, keys: tuple[str, ...], vals: tuple[np.ndarray, ...], extra: np.ndarray | None) -> pa.Array:
    src = json.dumps(sf.name, ensure_ascii=False)
    if extra is not None and extra.any():  # rare: rows with replaced bytes carry a count
        out = []
        for i in range(len(vals[0])):
            d = {k: int(v[i]) for k, v in zip(keys, vals)}
            d["source"] = sf.name
            if extra[i]:
                d["decode_errors"] = int(extra[i])
            out.append(json.dumps(d, sort_keys=True, ensure_ascii=False))
        return pa.array(out, pa.string())
    parts: list[Any] = []
    for i, (k, v) in enumerate(zip(keys, vals)):
        parts += [("{" if i == 0 else ", ") + f'"{k}": ', pc.cast(pa.array(v), pa.string())]
    parts.append(f', "source": {src}}}')
    return pc.binary_join_element_wise(*parts, "")


def chunk_table(sf: SourceFile, chunk: Chunk, recipe: str) -> pa.Table:
    """The chunk as RAW_SCHEMA rows (good and failed rows in input order); sample_index is set later."""
    n = len(chunk.texts)
    ids = chunk.ids if chunk.ids is not None else doc_ids(sf.name, chunk.pos)
    cols = {
        "id": ids,
        "text": chunk.texts,
        "template": _repeat(TEMPLATE, n, pa.string()),
        "backend": _repeat(BACKEND, n, pa.string()),
        "finish_reason": _repeat("stop", n, pa.string()),
        "recipe": _repeat(recipe, n, pa.string()),
        "sample_index": pa.array(np.zeros(n, np.int64)),
        "meta": _meta_column(sf, chunk.meta_keys, chunk.meta_vals, chunk.replaced_per_doc),
    }
    table = pa.table([cols[f.name] if f.name in cols else pa.nulls(n, f.type) for f in RAW_SCHEMA], schema=RAW_SCHEMA)
    if not chunk.bad:
        return table
    bad = raw_table({
        "id": doc_id(sf.name, pos), "text": "", "template": TEMPLATE, "backend": BACKEND, "finish_reason": "error",
        "error": msg, "error_kind": "invalid", "recipe": recipe, "sample_index": 0,
        "meta": {**where, "source": sf.name},
    } for pos, where, msg in chunk.bad)
    order = np.argsort(np.concatenate([chunk.pos, np.asarray([b[0] for b in chunk.bad], np.int64)]), kind="stable")
    return pa.concat_tables([table, bad]).take(pa.array(order))


# columns with few distinct values; dictionary-encoding the unique ones (id, text, meta) only costs time
_DICTIONARY_COLUMNS = ["template", "backend", "model", "finish_reason", "recipe", "error_kind", "error", "prompt", "slots"]
# min/max statistics help a reader skip row groups; for the text column they only cost time
_STATISTICS_COLUMNS = [f.name for f in RAW_SCHEMA if f.name != "text"]
# Parquet codecs an import may write its shards with (every Parquet reader reads all of them)
CODECS = ("none", "snappy", "lz4", "zstd")
DEFAULT_COMPRESSION = "none"


class _ChecksumFile(io.RawIOBase):
    """A file the Parquet writer writes through, checksumming the bytes as they pass: no second read,
    and no shard-sized buffer in memory."""

    def __init__(self, f):
        super().__init__()
        self.f, self.hash, self.size = f, xxhash.xxh3_128(), 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.hash.update(b)
        self.size += len(b)
        return self.f.write(b)

    def tell(self) -> int:
        return self.size


def _write_shard_file(table: pa.Table, path: Path, compression: str = DEFAULT_COMPRESSION) -> tuple[int, str]:
    """A Parquet shard as the store writes it (temp file, fsync, rename), minus dictionary encoding
    of the columns where every value is distinct and statistics of the text, which cost time for
    nothing. Returns (bytes, checksum)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    with open(tmp, "wb") as f:
        sink = _ChecksumFile(f)
        pq.write_table(table, sink, compression=compression, row_group_size=8192, use_dictionary=_DICTIONARY_COLUMNS,
                       write_statistics=_STATISTICS_COLUMNS, store_schema=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)
    return sink.size, sink.hash.hexdigest()


class _ShardWriter:
    """Collects chunk tables and writes a shard of about `rows` rows or `nbytes` text bytes at a time.
    Shards are encoded and written by `workers` background threads (Parquet encoding, compression,
    hashing and file writes release the GIL, so they run beside the parsing of the next block), and
    entered into the manifest strictly in order, each with the point where the input resumes after
    it: a crash leaves a manifest whose last shard is a true resume point."""

    def __init__(self, corpus: Corpus, next_shard: int, rows: int, nbytes: int, compression: str = DEFAULT_COMPRESSION,
                 workers: int = 2):
        self.corpus, self.next_shard, self.rows, self.nbytes = corpus, next_shard, rows, nbytes
        self.compression, self.workers = compression, max(1, workers)
        self.tables: list[pa.Table] = []
        self.buffered_rows = self.buffered_bytes = 0
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="shard-writer")
        self.pending: deque[tuple[str, int, Future, dict[str, Any]]] = deque()

    def add(self, table: pa.Table, resume: dict[str, Any]) -> None:
        if table.num_rows:
            self.tables.append(table)
            self.buffered_rows += table.num_rows
            self.buffered_bytes += table["text"].nbytes
        if self.buffered_rows >= self.rows or self.buffered_bytes >= self.nbytes:
            self.flush(resume)

    def flush(self, resume: dict[str, Any]) -> None:
        if not self.tables:
            return
        table = pa.concat_tables(self.tables)
        self.tables, self.buffered_rows, self.buffered_bytes = [], 0, 0
        name = f"part-{self.next_shard:05d}"
        self.next_shard += 1
        resume = json.loads(json.dumps({**resume, "shard": self.next_shard}))  # a snapshot
        while len(self.pending) >= self.workers:  # bounded: memory stays flat
            self._commit_oldest()
        path = self.corpus.shard_path("raw", name)
        self.pending.append((name, table.num_rows, self.pool.submit(_write_shard_file, table, path, self.compression),
                             resume))

    def _commit_oldest(self) -> None:
        name, rows, future, resume = self.pending.popleft()
        size, digest = future.result()
        entry = {"file": f"raw/{name}.parquet", "rows": rows, "bytes": size, CHECKSUM: digest}

        def add(m):  # the shard and the resume point in one manifest write
            m["stages"]["raw"]["shards"][name] = entry
            m["stages"]["raw"]["info"] = {"resume": resume}

        self.corpus.update_manifest(add)

    def wait(self) -> None:
        while self.pending:
            self._commit_oldest()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            for _, _, future, _ in self.pending:  # after a failed write: let the others finish, unrecorded
                future.cancel()
            self.pending.clear()
            self.pool.shutdown(wait=True)


def _import_recipe(name: str, source: Path, files: list[SourceFile], opts: ReadOptions, fmt: str | None,
                   include: list[str] | None, license: str, description: str, shard_rows: int, shard_bytes: int,
                   compression: str) -> dict:
    return {
        "name": name,
        "description": description,
        "license": license,
        "import": {
            "source": str(source),
            "source_path": str(source.resolve()),
            "format": fmt or "auto",
            "include": include or [],
            "options": opts.as_dict(),
            "layout": {"block_bytes": opts.block_bytes, "shard_rows": shard_rows, "shard_bytes": shard_bytes,
                       "compression": compression},
            "files": [{"name": f.name, "format": f.format, "compression": f.compression, "bytes": f.size,
                       "mtime_ns": f.mtime_ns} for f in files],
        },
    }


def _same_import(a: dict, b: dict) -> bool:
    def key(r):
        imp = dict(r.get("import") or {})
        imp.pop("source", None)  # the same files named by another relative path are the same import
        return {**r, "import": imp}
    return key(a) == key(b)


def _describe(m: dict) -> str:
    r = m.get("recipe") or {}
    if m.get("kind") == "import":
        return f"imported from {r.get('import', {}).get('source', '?')}"
    return f"{m.get('kind', 'generated')} corpus {m.get('name', '?')!r}"


def import_corpus(source: str | Path, out: str | Path, opts: ReadOptions | None = None, *, fmt: str | None = None,
                  include: list[str] | None = None, name: str | None = None, license: str = "unknown",
                  description: str = "", force: bool = False, shard_rows: int = 100_000, shard_bytes: int = 64 << 20,
                  compression: str = DEFAULT_COMPRESSION, writers: int = 2, progress: ProgressFn | None = None) -> ImportStats:
    """Import SOURCE (a file or a folder) into a new corpus at OUT. See the module docstring."""
    t0 = time.time()
    opts = opts or ReadOptions()
    if opts.split not in ("line", "blank", "sep"):
        raise CorpusError(f"unknown --split {opts.split!r} (one of line, blank, sep)")
    if opts.split == "sep" and not opts.separator:
        raise CorpusError("--split sep needs a non-empty --separator")
    if not opts.text_field:
        raise CorpusError("--text-field must not be empty")
    if compression not in CODECS:
        raise CorpusError(f"unknown --compression {compression!r} (one of {', '.join(CODECS)})")
    source, out = Path(source), Path(out)
    files = find_sources(source, fmt, include)
    for f in files:
        if f.size == 0:
            raise ImportInputError(f"{f.path}: empty file (0 bytes, no documents)")
    name = name or out.name
    recipe = _import_recipe(name, source, files, opts, fmt, include, license, description, shard_rows, shard_bytes,
                            compression)
    stats = ImportStats(files=len(files), bytes_total=sum(f.size for f in files))

    # the target: the same import already done is a no-op; anything else is refused unless --force
    if out.exists():
        target = Corpus(out)
        if target.exists():
            m = target.manifest()
            if (not force and m.get("kind") == "import" and _same_import(m.get("recipe") or {}, recipe)
                    and target.is_complete("raw")):
                info = m["stages"]["raw"].get("info") or {}
                stats.status = "unchanged"
                stats.docs, stats.failed = info.get("docs", target.count("raw")), info.get("failed", 0)
                stats.shards = len(target.shard_names("raw"))
                stats.seconds = time.time() - t0
                return stats
            if not force:
                raise CorpusError(f"{out}: already holds a corpus ({_describe(m)}); pass --force to replace it with "
                                  "this import, or choose another --out")
        elif out.is_file() or any(out.iterdir()):
            raise CorpusError(f"{out}: exists and is not a corpus; refusing to replace it (even with --force); "
                              "choose another --out")

    tmp = out.parent / f".{out.name}.importing"
    tmp_corpus = Corpus(tmp)
    resume: dict[str, Any] | None = None
    if tmp.exists():
        m = tmp_corpus.manifest() if tmp_corpus.exists() else None
        if m and m.get("kind") == "import" and _same_import(m.get("recipe") or {}, recipe):
            resume = (m["stages"]["raw"].get("info") or {}).get("resume")
        if resume is None:  # a leftover of another import (or of a bad input): start over
            shutil.rmtree(tmp)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_corpus.init(name, recipe, kind="import")

    start_file, start_state, rows_done = 0, {}, 0
    if resume is not None:
        # forget shards written after the recorded resume point (a crash between file and manifest)
        keep = {f"part-{k:05d}" for k in range(resume["shard"])}
        def prune(m):
            for n in [n for n in m["stages"]["raw"]["shards"] if n not in keep]:
                m["stages"]["raw"]["shards"].pop(n)
        tmp_corpus.update_manifest(prune)
        start_file, start_state, rows_done = resume["file"], resume["state"], resume["rows"]
        for k, v in resume["counters"].items():
            setattr(stats, k, v)
        stats.status = "resumed"
        stats.resumed_shards = resume["shard"]

    writer = _ShardWriter(tmp_corpus, resume["shard"] if resume else 0, shard_rows, shard_bytes, compression, writers)
    scratch = tmp / ".scratch"
    done_before = sum(f.size for f in files[:start_file])
    try:
        for fi in range(start_file, len(files)):
            sf = files[fi]
            state = start_state if fi == start_file else {}
            stats.per_file.setdefault(sf.name, 0)
            for chunk in _guarded(sf, read_chunks(sf, opts, state, scratch)):
                table = chunk_table(sf, chunk, name)
                n = table.num_rows
                table = table.set_column(table.schema.get_field_index("sample_index"), RAW_SCHEMA.field("sample_index"),
                                         pa.array(np.arange(rows_done, rows_done + n, dtype=np.int64)))
                rows_done += n
                stats.docs += len(chunk.texts)
                stats.failed += len(chunk.bad)
                stats.replaced += chunk.replaced
                stats.skipped_blank += chunk.skipped_blank
                stats.per_file[sf.name] += n
                for pos, where, msg in chunk.bad[: max(0, MAX_ERRORS_KEPT - len(stats.errors))]:
                    loc = f":{where['line']}" if "line" in where else f": row {where['row']}"
                    stats.errors.append(f"{sf.name}{loc}: {msg}")
                writer.add(table, {"file": fi, "state": chunk.state, "rows": rows_done, "counters": stats.counters()})
                if progress:
                    progress(done_before + chunk.bytes_done, stats.bytes_total)
            if stats.per_file[sf.name] == 0:
                raise ImportInputError(f"{sf.path}: no documents found" + (
                    f" (every {'line' if opts.split == 'line' else 'piece'} is blank)" if sf.format == "text" else ""))
            done_before += sf.size
            if progress:
                progress(done_before, stats.bytes_total)
        writer.flush({"file": len(files), "state": {}, "rows": rows_done, "counters": stats.counters()})
        writer.close()
    except ImportInputError:
        writer.close()
        shutil.rmtree(tmp, ignore_errors=True)  # bad input: nothing here is worth resuming
        raise
    except BaseException:
        writer.close()  # keep what was written: the same command resumes from the last shard
        raise

    if opts.id_field:
        try:
            _check_unique_ids(tmp_corpus, opts.id_field)
        except ImportInputError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    stats.shards = len(tmp_corpus.shard_names("raw"))
    stats.seconds = time.time() - t0
    info = {"docs": stats.docs, "failed": stats.failed, "replaced_bytes": stats.replaced,
            "skipped_blank": stats.skipped_blank, "files": stats.per_file, "errors": stats.errors}
    tmp_corpus.mark_complete("raw", info)
    shutil.rmtree(scratch, ignore_errors=True)
    swap_dir_into_place(tmp, out)
    return stats


def _check_unique_ids(corpus: Corpus, id_field: str) -> None:
    """Ids from the user's field must name one document each (dedup, `duplicate_of` and curricula
    refer to documents by id). Checked once the shards are written, with DuckDB, which spills to
    disk rather than holding every id in memory."""
    import duckdb

    files = [str(corpus.root / e["file"]) for e in corpus.shard_entries("raw").values()]
    if not files:
        return
    con = duckdb.connect()
    try:
        dup = con.execute(
            "SELECT id, count(*) AS n, list(meta ORDER BY sample_index)[1:2] AS at, count(*) OVER () AS ids "
            "FROM read_parquet(?) WHERE finish_reason IS DISTINCT FROM 'error' "
            "GROUP BY id HAVING count(*) > 1 ORDER BY min(sample_index) LIMIT 1", [files]).fetchone()
    finally:
        con.close()
    if dup is None:
        return
    value, n, at, ids = dup

    def where(meta: str) -> str:
        m = json.loads(meta)
        return f"{m['source']}:{m['line']}" if "line" in m else f"{m['source']}: row {m.get('row')}"

    more = f"; {ids - 1} more ids are repeated too" if ids > 1 else ""
    sources = {json.loads(m)["source"] for m in at}
    hint = " (or choose the files with --include, e.g. one split)" if len(sources) > 1 else ""
    raise ImportInputError(f"id field {id_field!r} is not unique: {value!r} names {n} documents, first at "
                           f"{where(at[0])} and {where(at[1])}{more}. Ids must name one document each; "
                           f"leave out --id-field to give every document an id made from its file and position{hint}")


def _guarded(sf: SourceFile, chunks):
    """Read errors the readers did not foresee (a truncated gzip, damaged Parquet) still name the file."""
    try:
        yield from chunks
    except (pa.ArrowException, UnicodeError, OSError, EOFError) as e:
        raise ImportInputError(f"{sf.path}: cannot read it ({type(e).__name__}: {e})") from None
    except Exception as e:
        if type(e).__module__.startswith("zstandard") or type(e).__name__ == "ZstdError":
            raise ImportInputError(f"{sf.path}: cannot decompress it ({e})") from None
        raise


__all__ = ["ImportStats", "ImportInputError", "ReadOptions", "import_corpus", "doc_id", "doc_ids", "chunk_table"]
