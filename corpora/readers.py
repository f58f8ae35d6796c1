"""Stream documents out of one source file, in chunks of about `block_bytes`.

Every reader takes a start position (a small dict, see `Chunk.state`) and yields `Chunk`s; a
chunk's boundaries depend only on the position it starts at and the file's bytes, never on what
was read before, so an import resumed from a recorded position writes the same shards as one that
was never stopped.

Text is split into documents by line, by blank lines or by a separator string. In `sep` mode the
newline right after a separator and the one right before it are part of the separator (the
TinyStories layout `story\\n<|endoftext|>\\nstory`), and a separator inside a document is written
escaped by `tinyschool export --format txt` (see `escape_separator`), which this reader undoes.
"""
from __future__ import annotations

import json
import mmap
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq

from corpora.schema import SURROGATES
from corpora.sources import ImportInputError, SourceFile, open_binary, read_exact

DEFAULT_SEPARATOR = "<|endoftext|>"


@dataclass(frozen=True)
class ReadOptions:
    text_field: str = "text"
    id_field: str | None = None
    split: str = "line"  # line | blank | sep (plain text only)
    separator: str = DEFAULT_SEPARATOR
    strip: bool = False  # strip surrounding whitespace from every document
    skip_bad: bool = False
    block_bytes: int = 16 << 20

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d.pop("block_bytes")
        return d


@dataclass
class Chunk:
    texts: pa.Array | pa.ChunkedArray  # string
    pos: np.ndarray  # int64, the position the id is made from (line, doc or row number)
    meta_keys: tuple[str, ...]  # sorted provenance keys besides "source", each with an int64 array below
    meta_vals: tuple[np.ndarray, ...]
    ids: pa.Array | None = None  # from the user's --id-field
    bad: list[tuple[int, dict[str, int], str]] = field(default_factory=list)  # (pos, provenance, error)
    replaced: int = 0  # undecodable byte sequences replaced by U+FFFD
    replaced_per_doc: np.ndarray | None = None
    skipped_blank: int = 0
    state: dict[str, int] = field(default_factory=dict)  # where the next chunk starts
    bytes_done: int = 0  # bytes of the file on disk consumed so far


# ---- separators ------------------------------------------------------------------------------------

def _escape_parts(sep: str) -> tuple[str, str] | None:
    """Split a separator where an escaping backslash goes (before its last character)."""
    if len(sep) < 2 or sep[-1] == "\\" or sep[-2] == "\\":
        return None
    return sep[:-1], sep[-1]


def escape_separator(text: str, sep: str = DEFAULT_SEPARATOR) -> str:
    """`<|endoftext|>` -> `<|endoftext\\|>`, and every already-escaped form gets one more backslash.

    Bijective, and it touches nothing but strings of the form head + backslashes + tail, which
    ordinary text does not contain.
    """
    parts = _escape_parts(sep)
    if parts is None:
        if sep in text:
            raise ValueError(f"cannot escape separator {sep!r}")
        return text
    head, tail = parts
    if head not in text:
        return text
    return re.sub(re.escape(head) + r"(\\*)" + re.escape(tail), lambda m: head + "\\" + m.group(1) + tail, text)


def unescape_separator(text: str, sep: str = DEFAULT_SEPARATOR) -> str:
    parts = _escape_parts(sep)
    if parts is None or parts[0] not in text:
        return text
    head, tail = parts
    return re.sub(re.escape(head) + r"\\(\\*)" + re.escape(tail), lambda m: head + m.group(1) + tail, text)


# ---- helpers -------------------------------------------------------------------------------------------

def decode(data: bytes | memoryview) -> tuple[str, int]:
    """UTF-8 text and the number of undecodable sequences replaced by U+FFFD."""
    try:
        return str(data, "utf-8"), 0
    except UnicodeDecodeError:
        s = str(data, "utf-8", "replace")
        return s, s.count("\ufffd") - bytes(data).count(b"\xef\xbf\xbd")


def count_newlines(data: bytes | memoryview) -> int:
    """Newlines in data, counted a megabyte at a time (a small temporary that stays in the cache,
    not a fresh block-sized one)."""
    a = np.frombuffer(data, np.uint8)
    return sum(int(np.count_nonzero(a[i:i + (1 << 20)] == 10)) for i in range(0, len(a), 1 << 20))


def _check_start(sf: SourceFile, block: memoryview) -> memoryview:
    head = bytes(block[:3])
    if head.startswith(b"\xff\xfe") or head.startswith(b"\xfe\xff"):
        raise ImportInputError(f"{sf.path}: the file is UTF-16 (byte-order mark); convert it to UTF-8 first")
    if head.startswith(b"\xef\xbb\xbf"):
        return block[3:]
    return block


def _skip(stream, raw, n: int) -> None:
    if n <= 0:
        return
    if stream is raw:
        raw.seek(n)
        return
    while n > 0:
        got = stream.read(min(n, 8 << 20))
        if not got:
            break
        n -= len(got)


def byte_blocks(stream, block: int, delims: tuple[bytes, ...]) -> Iterator[memoryview]:
    """Blocks ending just after the last delimiter within `block` bytes (or the first one after, for a
    record longer than a block; or at the end of the stream). A block depends only on where it starts.
    Blocks are memoryviews into one buffer per read (no copy of the block itself)."""
    rest = b""
    eof = False
    while True:
        buf = rest
        if not eof and len(buf) < block:
            want = block - len(buf)
            more = read_exact(stream, want)
            eof = len(more) < want
            buf = buf + more if buf else more
        if not buf:
            return
        cut = max((c + len(d) for d in delims if (c := buf.rfind(d, 0, block)) >= 0), default=-1)
        if cut >= 0:
            end = cut
        elif eof:
            end = len(buf)
        else:
            end = -1
            while end < 0:
                start = max(0, len(buf) - max(map(len, delims)) + 1)
                more = read_exact(stream, block)
                buf += more
                end = min((c + len(d) for d in delims if (c := buf.find(d, start)) >= 0), default=-1)
                if end < 0 and len(more) < block:
                    eof = True
                    end = len(buf)
        rest = buf[end:]
        yield memoryview(buf)[:end]


def mmap_blocks(mm, pos: int, block: int, delims: tuple[bytes, ...]) -> Iterator[memoryview]:
    """`byte_blocks` over a memory-mapped file from byte `pos`: the same block boundaries, without
    copying the bytes out of the page cache."""
    size = len(mm)
    while pos < size:
        lim = min(pos + block, size)
        end = max((c + len(d) for d in delims if (c := mm.rfind(d, pos, lim)) >= 0), default=-1)
        if end < 0:
            end = size if lim == size else min((c + len(d) for d in delims if (c := mm.find(d, pos)) >= 0), default=size)
        yield memoryview(mm)[pos:end]
        pos = end


def file_blocks(sf: SourceFile, offset: int, block: int, delims: tuple[bytes, ...]) -> Iterator[tuple[memoryview, int]]:
    """(block, bytes of the file on disk read so far) from byte `offset` of the decompressed data:
    an uncompressed file is memory-mapped, a compressed one streamed through its decompressor."""
    if sf.compression is None:
        with open(sf.path, "rb") as f:
            if sf.size == 0 or offset >= os.fstat(f.fileno()).st_size:
                return
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        dropped = offset - offset % mmap.PAGESIZE
        try:
            for view in mmap_blocks(mm, offset, block, delims):
                offset += len(view)
                yield view, offset
                try:
                    view.release()
                except BufferError:
                    pass
                # the pages read stay in the page cache but leave this process's resident set
                done = offset - offset % mmap.PAGESIZE
                if done > dropped:
                    mm.madvise(mmap.MADV_DONTNEED, dropped, done - dropped)
                    dropped = done
        finally:
            try:
                mm.close()
            except BufferError:  # a view still held by the caller: unmapped when it is collected
                pass
        return
    stream, raw = open_binary(sf)
    try:
        _skip(stream, raw, offset)
        for view in byte_blocks(stream, block, delims):
            yield view, raw.tell()
    finally:
        stream.close()
        raw.close()


def _provenance(sf: SourceFile, where: dict[str, int]) -> str:
    return f"{sf.path}:{where['line']}" if "line" in where else f"{sf.path}: row {where['row']}"


def _fail(sf: SourceFile, opts: ReadOptions, chunk_bad: list, pos: int, where: dict[str, int], msg: str) -> None:
    if not opts.skip_bad:
        raise ImportInputError(f"{_provenance(sf, where)}: {msg}" + ("" if "--skip-bad" in msg else
                               " (use --skip-bad to record such rows as failed and go on)"))
    chunk_bad.append((pos, where, msg))


# ---- plain text ------------------------------------------------------------------------------------

def read_text(sf: SourceFile, opts: ReadOptions, state: dict[str, int]) -> Iterator[Chunk]:
    offset, line, doc = state.get("offset", 0), state.get("line", 1), state.get("doc", 0)
    if opts.split == "sep":
        delims = (opts.separator.encode(),)
    elif opts.split == "blank":
        delims = (b"\n\n", b"\n\r\n")  # a blank line, LF or CRLF
    else:
        delims = (b"\n",)
    for block, done in file_blocks(sf, offset, opts.block_bytes, delims):
        nbytes = len(block)
        if offset == 0:
            block = _check_start(sf, block)
        text, replaced = decode(block)
        first = offset == 0
        offset += nbytes
        if opts.split == "line":
            docs, lines, skipped, nl = _split_lines(text, line, opts.strip)
            keys, vals, pos = ("line",), (lines,), lines
        elif opts.split == "blank":
            docs, lines, skipped, nl = _split_blank(text, line, opts.strip)
            keys, vals, pos = ("line",), (lines,), lines
        else:
            docs, lines, idx, skipped, nl, doc = _split_sep(text, line, doc, first, opts)
            keys, vals, pos = ("doc", "line"), (idx, lines), idx
        line += nl
        arr = pa.array(docs, pa.string())
        per_doc = None
        if replaced:
            per_doc = pc.count_substring(arr, "\ufffd").to_numpy(zero_copy_only=False).astype(np.int64)
        yield Chunk(arr, pos, keys, vals, replaced=replaced, replaced_per_doc=per_doc, skipped_blank=skipped,
                    state={"offset": offset, "line": line, "doc": doc}, bytes_done=done)


def _split_lines(text: str, line: int, strip: bool):
    parts = text.split("\n")
    if text.endswith("\n"):
        parts.pop()
    docs, lines, skipped = [], [], 0
    for i, s in enumerate(parts):
        if s.endswith("\r"):
            s = s[:-1]
        if strip:
            s = s.strip()
        if not s or s.isspace():
            skipped += 1
            continue
        docs.append(s)
        lines.append(line + i)
    return docs, np.asarray(lines, np.int64), skipped, text.count("\n")


def _split_blank(text: str, line: int, strip: bool):
    docs, lines, skipped = [], [], 0
    cur: list[str] = []
    start = 0
    parts = text.split("\n")
    if text.endswith("\n"):
        parts.pop()
    for i, s in enumerate(parts + [""]):
        if s.endswith("\r"):
            s = s[:-1]
        if s.strip():
            if not cur:
                start = line + i
            cur.append(s)
            continue
        if i < len(parts):
            skipped += 1
        if cur:
            d = "\n".join(cur)
            docs.append(d.strip() if strip else d)
            lines.append(start)
            cur = []
    return docs, np.asarray(lines, np.int64), skipped, text.count("\n")


def _drop_newline_front(s: str) -> tuple[str, int]:
    if s.startswith("\r\n"):
        return s[2:], 1
    if s.startswith("\n"):
        return s[1:], 1
    return s, 0


def _drop_newline_back(s: str) -> str:
    if s.endswith("\r\n"):
        return s[:-2]
    if s.endswith("\n"):
        return s[:-1]
    return s


def _split_sep(text: str, line: int, doc: int, first_block: bool, opts: ReadOptions):
    sep = opts.separator
    pieces = text.split(sep)
    if text.endswith(sep):
        pieces.pop()  # the block ends with a separator: nothing after it in this block
    sep_lines = sep.count("\n")
    docs, lines, idx, skipped = [], [], [], 0
    cur = line
    for j, piece in enumerate(pieces):
        s, lead = (piece, 0) if (first_block and j == 0) else _drop_newline_front(piece)
        s = _drop_newline_back(s)
        s = unescape_separator(s, sep)
        if opts.strip:
            s = s.strip()
        if s and not s.isspace():
            docs.append(s)
            lines.append(cur + lead)
            idx.append(doc)
        elif s:
            skipped += 1  # whitespace only (nothing at all between two separators is not counted)
        doc += 1
        cur += piece.count("\n") + sep_lines
    nl = text.count("\n")
    return docs, np.asarray(lines, np.int64), np.asarray(idx, np.int64), skipped, nl, doc


# ---- JSON lines -----------------------------------------------------------------------------------

def read_jsonl(sf: SourceFile, opts: ReadOptions, state: dict[str, int]) -> Iterator[Chunk]:
    offset, line = state.get("offset", 0), state.get("line", 1)
    for block, done in file_blocks(sf, offset, opts.block_bytes, (b"\n",)):
        nbytes = len(block)
        if offset == 0:
            block = _check_start(sf, block)
            head = bytes(block[:4096]).lstrip()[:1]
            if head == b"[":
                raise ImportInputError(f"{sf.path}:1: a JSON array, not JSON Lines (one object per line); "
                                       "convert it, e.g. with `jq -c '.[]'`")
        newlines = count_newlines(block)
        chunk = _parse_json_block(sf, opts, block, line, newlines)
        offset += nbytes
        line += newlines
        chunk.state = {"offset": offset, "line": line}
        chunk.bytes_done = done
        del block
        yield chunk


def _json_fast(block: memoryview, opts: ReadOptions) -> pa.Table | None:
    """Parse a block with Arrow's JSON reader; None when it refuses (the slow path then finds why)."""
    id_types = [pa.string(), pa.int64()] if opts.id_field else [None]
    for id_type in id_types:
        fields = [(opts.text_field, pa.string())]
        if id_type is not None:
            fields.append((opts.id_field, id_type))
        try:
            t = pj.read_json(pa.BufferReader(pa.py_buffer(block)),
                             read_options=pj.ReadOptions(use_threads=True, block_size=max(1 << 20, len(block) // 4 + 1)),
                             parse_options=pj.ParseOptions(explicit_schema=pa.schema(fields), newlines_in_values=False,
                                                           unexpected_field_behavior="ignore"))
        except (pa.ArrowInvalid, UnicodeDecodeError, pa.ArrowNotImplementedError):
            continue
        if t[opts.text_field].null_count or (opts.id_field and t[opts.id_field].null_count):
            return None
        return t
    return None


def _parse_json_block(sf: SourceFile, opts: ReadOptions, block: memoryview, line: int, newlines: int) -> Chunk:
    t = _json_fast(block, opts)
    if t is not None:
        n_lines = newlines + (0 if block[-1] == 10 else 1)
        if t.num_rows == n_lines:
            lines = np.arange(line, line + n_lines, dtype=np.int64)
            skipped = 0
        else:  # blank lines in the block: find the line numbers of the others
            nonblank = [i for i, s in enumerate(bytes(block).split(b"\n")) if s.strip()]
            lines = line + np.asarray(nonblank, np.int64)
            skipped = n_lines - len(nonblank)
        texts = t[opts.text_field]  # left in Arrow's chunks: the shard writer takes them as they are
        ids = pc.cast(t[opts.id_field].combine_chunks(), pa.string()) if opts.id_field else None
        return Chunk(texts, lines, ("line",), (lines,), ids=ids, skipped_blank=skipped)
    return _parse_json_slow(sf, opts, bytes(block), line)


def _parse_json_slow(sf: SourceFile, opts: ReadOptions, block: bytes, line: int) -> Chunk:
    """Line by line with json.loads: finds the line that is bad and says why."""
    texts, ids, lines, bad = [], [], [], []
    replaced_total, per_doc, skipped = 0, [], 0
    tf, idf = opts.text_field, opts.id_field
    n_newlines = block.count(b"\n")
    for i, raw_line in enumerate(block.split(b"\n")):
        if not raw_line.strip():
            if i < n_newlines:
                skipped += 1
            continue
        ln = line + i
        where = {"line": ln}
        s, replaced = decode(raw_line)
        replaced_total += replaced
        try:
            obj = json.loads(s)
        except json.JSONDecodeError as e:
            _fail(sf, opts, bad, ln, where, f"invalid JSON ({e.msg} at column {e.colno})")
            continue
        if not isinstance(obj, dict):
            _fail(sf, opts, bad, ln, where, f"expected a JSON object, got {type(obj).__name__}")
            continue
        if tf not in obj or obj[tf] is None:
            what = "is null" if tf in obj else "is missing"
            _fail(sf, opts, bad, ln, where, f"text field {tf!r} {what} (fields: {', '.join(list(obj)[:12]) or 'none'}; "
                  "choose one with --text-field)")
            continue
        if not isinstance(obj[tf], str):
            _fail(sf, opts, bad, ln, where, f"text field {tf!r} is a {type(obj[tf]).__name__}, expected a string")
            continue
        text = obj[tf]
        if SURROGATES.search(text):  # "\ud800" escapes decode to lone surrogates, which UTF-8 cannot hold
            text, n = SURROGATES.subn("\ufffd", text)
            replaced += n
            replaced_total += n
        if idf:
            v = obj.get(idf)
            if v is None or isinstance(v, (dict, list)):
                _fail(sf, opts, bad, ln, where, f"id field {idf!r} is {'missing' if v is None else 'not a scalar'}")
                continue
            v = str(v) if not isinstance(v, bool) else str(v).lower()
            ids.append(SURROGATES.sub("\ufffd", v))
        texts.append(text)
        lines.append(ln)
        per_doc.append(replaced)
    arr = np.asarray(lines, np.int64)
    return Chunk(pa.array(texts, pa.string()), arr, ("line",), (arr,), ids=pa.array(ids, pa.string()) if idf else None,
                 bad=bad, replaced=replaced_total,
                 replaced_per_doc=np.asarray(per_doc, np.int64) if replaced_total else None, skipped_blank=skipped)


# ---- Parquet and Arrow ---------------------------------------------------------------------------

def _decompressed_copy(sf: SourceFile, scratch: Path) -> Path:
    """Parquet and Arrow need random access: a compressed one is unpacked into the scratch folder."""
    scratch.mkdir(parents=True, exist_ok=True)
    out = scratch / (sf.name.replace("/", "__") + ".unpacked")
    if not out.exists():
        stream, raw = open_binary(sf)
        tmp = out.with_suffix(".part")
        with stream, raw, open(tmp, "wb") as f:
            shutil.copyfileobj(stream, f, 8 << 20)
        tmp.rename(out)
    return out


def _columns_check(sf: SourceFile, opts: ReadOptions, schema: pa.Schema) -> list[str]:
    names = schema.names
    cols = [opts.text_field] + ([opts.id_field] if opts.id_field else [])
    for c in cols:
        if c not in names:
            role = "text" if c == opts.text_field else "id"
            hint = "--text-field" if role == "text" else "--id-field"
            raise ImportInputError(f"{sf.path}: no {role} column {c!r} (columns: {', '.join(names)}; choose one with {hint})")
    t = schema.field(opts.text_field).type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if not (pa.types.is_string(t) or pa.types.is_large_string(t) or getattr(pa.types, "is_string_view", lambda _: False)(t)):
        raise ImportInputError(f"{sf.path}: text column {opts.text_field!r} is {t}, expected a string column")
    return cols


def _table_chunk(sf: SourceFile, opts: ReadOptions, t: pa.Table | pa.RecordBatch, row0: int) -> Chunk:
    texts = pc.cast(t.column(opts.text_field), pa.string())
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    rows = np.arange(row0, row0 + t.num_rows, dtype=np.int64)
    ids = None
    if opts.id_field:
        ids = pc.cast(t.column(opts.id_field), pa.string())
        if isinstance(ids, pa.ChunkedArray):
            ids = ids.combine_chunks()
    bad = []
    nulls = texts.is_null()
    if ids is not None:
        nulls = pc.or_(nulls, ids.is_null())
    if texts.null_count or (ids is not None and ids.null_count):
        idx = np.flatnonzero(nulls.to_numpy(zero_copy_only=False))
        for i in idx:
            r = int(rows[i])
            what = "text is null" if not texts[int(i)].is_valid else f"id field {opts.id_field!r} is null"
            _fail(sf, opts, bad, r, {"row": r}, what)
        keep = pc.invert(nulls)
        texts, rows = texts.filter(keep), rows[~nulls.to_numpy(zero_copy_only=False)]
        ids = ids.filter(keep) if ids is not None else None
    return Chunk(texts, rows, ("row",), (rows,), ids=ids, bad=bad)


def read_parquet(sf: SourceFile, opts: ReadOptions, state: dict[str, int], scratch: Path) -> Iterator[Chunk]:
    path = _decompressed_copy(sf, scratch) if sf.compression else sf.path
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:
        raise ImportInputError(f"{sf.path}: not a readable Parquet file ({e})") from None
    cols = _columns_check(sf, opts, pf.schema_arrow)
    md = pf.metadata
    total = md.num_rows
    if total == 0:
        return
    text_idx = pf.schema_arrow.get_field_index(opts.text_field)
    ubytes = sum(md.row_group(i).column(text_idx).total_uncompressed_size for i in range(md.num_row_groups)
                 if text_idx < md.row_group(i).num_columns)
    batch = int(min(65536, max(256, opts.block_bytes // max(1, ubytes // total))))
    row = state.get("row", 0)
    start = 0
    for rg in range(md.num_row_groups):
        n = md.row_group(rg).num_rows
        if start + n <= row:
            start += n
            continue
        r = start
        try:
            for b in pf.iter_batches(batch_size=batch, row_groups=[rg], columns=cols, use_threads=True):
                if r + b.num_rows <= row:
                    r += b.num_rows
                    continue
                chunk = _table_chunk(sf, opts, b, r)
                r += b.num_rows
                chunk.state = {"row": r}
                chunk.bytes_done = int(sf.size * r / total)
                yield chunk
        except ImportInputError:
            raise
        except Exception as e:
            raise ImportInputError(f"{sf.path}: row group {rg}: unreadable Parquet ({type(e).__name__}: {e})") from None
        start += n


def read_arrow(sf: SourceFile, opts: ReadOptions, state: dict[str, int], scratch: Path) -> Iterator[Chunk]:
    path = _decompressed_copy(sf, scratch) if sf.compression else sf.path
    source = pa.memory_map(str(path), "r")
    try:
        try:
            reader = pa.ipc.open_stream(source)
            batches: Callable[[], Iterator[pa.RecordBatch]] = lambda: iter(reader)  # noqa: E731
        except pa.ArrowInvalid:
            source.seek(0)
            try:
                freader = pa.ipc.open_file(source)
            except pa.ArrowInvalid as e:
                raise ImportInputError(f"{sf.path}: not an Arrow IPC stream or file ({e})") from None
            reader = freader
            batches = lambda: (freader.get_batch(i) for i in range(freader.num_record_batches))  # noqa: E731
        cols = _columns_check(sf, opts, reader.schema)
        row = state.get("row", 0)
        r = 0
        pending: list[pa.RecordBatch] = []
        pending_bytes = 0
        start = 0
        try:
            for b in batches():
                if r + b.num_rows <= row:
                    r += b.num_rows
                    start = r
                    continue
                b = b.select(cols)
                pending.append(b)
                pending_bytes += b.nbytes
                r += b.num_rows
                if pending_bytes >= opts.block_bytes:
                    chunk = _table_chunk(sf, opts, pa.Table.from_batches(pending), start)
                    chunk.state = {"row": r}
                    chunk.bytes_done = source.tell()
                    yield chunk
                    pending, pending_bytes, start = [], 0, r
        except pa.ArrowInvalid as e:
            raise ImportInputError(f"{sf.path}: after row {r}: damaged Arrow data ({e})") from None
        if pending:
            chunk = _table_chunk(sf, opts, pa.Table.from_batches(pending), start)
            chunk.state = {"row": r}
            chunk.bytes_done = sf.size
            yield chunk
    finally:
        source.close()


def read_chunks(sf: SourceFile, opts: ReadOptions, state: dict[str, int], scratch: Path) -> Iterator[Chunk]:
    if sf.format == "text":
        return read_text(sf, opts, state)
    if sf.format == "jsonl":
        return read_jsonl(sf, opts, state)
    if sf.format == "parquet":
        return read_parquet(sf, opts, state, scratch)
    if sf.format == "arrow":
        return read_arrow(sf, opts, state, scratch)
    raise ImportInputError(f"{sf.path}: unknown format {sf.format!r}")


__all__ = ["ReadOptions", "Chunk", "read_chunks", "escape_separator", "unescape_separator", "decode"]
