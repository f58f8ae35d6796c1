"""Find and open the files of an import source: one file or a folder, compressed or not.

A folder may be what Hugging Face `datasets.save_to_disk` writes (Arrow stream files listed in
state.json, splits listed in dataset_dict.json), a downloaded dataset repository (data/*.parquet)
or any tree of .parquet/.arrow/.jsonl/.txt files. Files are taken in a fixed order (the order of
state.json, else sorted by path) so that ids and shards come out the same on every run.
"""
from __future__ import annotations

import bz2
import fnmatch
import gzip
import json
import lzma
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from corpora.store import CorpusError

FORMATS = ("text", "jsonl", "parquet", "arrow")

# magic bytes -> compression
MAGIC = [
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
]
COMPRESSED_SUFFIXES = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd", ".bz2": "bz2", ".xz": "xz"}
FORMAT_SUFFIXES = {
    ".parquet": "parquet", ".pq": "parquet",
    ".arrow": "arrow", ".feather": "arrow", ".ipc": "arrow",
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
    ".txt": "text", ".text": "text",
}
# files a dataset folder holds besides the data
IGNORED_NAMES = {"state.json", "dataset_info.json", "dataset_infos.json", "dataset_dict.json", "README.md", ".gitattributes", "LICENSE",
                 "manifest.json"}


class ImportInputError(CorpusError):
    """Bad import input; the message names the file and the line or row."""


@dataclass(frozen=True)
class SourceFile:
    path: Path  # on disk
    name: str  # stable name used in ids and provenance: relative to the source folder, or the file name
    format: str  # text | jsonl | parquet | arrow
    compression: str | None  # gzip | zstd | bz2 | xz | None
    size: int  # bytes on disk
    mtime_ns: int


def sniff_compression(path: Path) -> str | None:
    with open(path, "rb") as f:
        head = f.read(8)
    for magic, kind in MAGIC:
        if head.startswith(magic):
            return kind
    return None


def guess_format(path: Path) -> str | None:
    """The format from the suffix, looking past a compression suffix (story.jsonl.zst -> jsonl)."""
    suffixes = [s.lower() for s in path.suffixes]
    while suffixes and suffixes[-1] in COMPRESSED_SUFFIXES:
        suffixes.pop()
    return FORMAT_SUFFIXES.get(suffixes[-1]) if suffixes else None


def _sniff_format(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"ARROW1") or head.startswith(b"\xff\xff\xff\xff"):
        return "arrow"
    return "text"


def _hf_saved_files(folder: Path) -> list[Path] | None:
    """Data files of a `save_to_disk` folder in their saved order (None when it is not one)."""
    dd = folder / "dataset_dict.json"
    if dd.exists():
        try:
            splits = json.loads(dd.read_text())["splits"]
        except (ValueError, KeyError, TypeError):
            raise ImportInputError(f"{dd}: not a valid dataset_dict.json (no \"splits\" list)") from None
        out: list[Path] = []
        for s in splits:
            files = _hf_saved_files(folder / s)
            if files is None:
                raise ImportInputError(f"{folder / s}: split {s!r} named in dataset_dict.json has no state.json")
            out += files
        return out
    st = folder / "state.json"
    if st.exists():
        try:
            names = [d["filename"] for d in json.loads(st.read_text())["_data_files"]]
        except (ValueError, KeyError, TypeError):
            raise ImportInputError(f"{st}: not a valid datasets state.json (no \"_data_files\")") from None
        return [folder / n for n in names]
    return None


def find_sources(source: str | Path, fmt: str | None = None, include: list[str] | None = None) -> list[SourceFile]:
    """Every data file of SOURCE with its format and compression, in a fixed order."""
    source = Path(source)
    if not source.exists():
        raise ImportInputError(f"{source}: no such file or folder")
    if source.is_dir():
        paths = _hf_saved_files(source)
        if paths is None:
            paths = []
            for root, dirs, files in os.walk(source):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for f in sorted(files):
                    p = Path(root) / f
                    if f.startswith(".") or f in IGNORED_NAMES:
                        continue
                    if fmt is None and guess_format(p) is None:
                        continue  # a folder: take only files we recognise by name
                    paths.append(p)
            paths.sort(key=lambda p: p.relative_to(source).as_posix())
        missing = [p for p in paths if not p.exists()]
        if missing:
            raise ImportInputError(f"{missing[0]}: listed in the dataset's state.json but missing")
        names = [p.relative_to(source).as_posix() for p in paths]
    else:
        paths, names = [source], [source.name]
    out = []
    for p, name in zip(paths, names):
        if include and not any(fnmatch.fnmatch(name, g) for g in include):
            continue
        st = p.stat()
        comp = sniff_compression(p) if st.st_size else None
        f = fmt or guess_format(p)
        if f is None:
            f = _sniff_format(p) if comp is None and st.st_size else "text"
        if f not in FORMATS:
            raise ImportInputError(f"{p}: unknown format {f!r} (one of {', '.join(FORMATS)})")
        out.append(SourceFile(p, name, f, comp, st.st_size, st.st_mtime_ns))
    if not out:
        what = f" matching {', '.join(include)}" if include else ""
        raise ImportInputError(f"{source}: no data files{what} found (looked for .parquet, .arrow, .jsonl, .json, .txt, "
                               "optionally .gz/.zst compressed)")
    return out


def open_binary(sf: SourceFile) -> tuple[BinaryIO, BinaryIO]:
    """(decompressed stream, raw file) — the raw file's tell() is the progress in bytes on disk."""
    raw = open(sf.path, "rb")
    if sf.compression is None:
        return raw, raw
    if sf.compression == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb"), raw
    if sf.compression == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, read_size=1 << 20), raw
    if sf.compression == "bz2":
        return bz2.BZ2File(raw, "rb"), raw
    if sf.compression == "xz":
        return lzma.LZMAFile(raw, "rb"), raw
    raise ImportInputError(f"{sf.path}: unknown compression {sf.compression}")


def read_exact(stream: BinaryIO, n: int) -> bytes:
    """Read n bytes unless the stream ends first (decompressors may return less per call)."""
    parts = []
    while n > 0:
        b = stream.read(n)
        if not b:
            break
        parts.append(b)
        n -= len(b)
    return b"".join(parts)
