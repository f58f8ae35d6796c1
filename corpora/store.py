"""Corpus store: zstd Parquet shards written atomically and a manifest.json per corpus.

Layout::

    <root>/manifest.json
    <root>/raw/part-00000.parquet
    <root>/annotated/part-00000.parquet
    <root>/clean/part-00000.parquet

A shard is written to a temporary file in the same folder, fsynced and renamed into place, then
registered in the manifest (under a lock, so that several processes may register shards).
A shard that is on disk but not in the manifest does not exist for readers.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from corpora.schema import SCHEMA_VERSION, STAGES

MANIFEST = "manifest.json"


class CorpusError(Exception):
    """A problem with a corpus, with a message meant for the user."""


class CorruptShardError(CorpusError):
    """A damaged shard. The message names the shard and points to `tinyschool verify`; `problem` is
    the same without that pointer (what `verify` itself lists)."""

    def __init__(self, path: Path | str, reason: str):
        self.path = Path(path)
        self.reason = reason
        self.problem = f"corrupt shard {self.path}: {reason}"
        root = self.path.parent.parent if self.path.suffix == ".parquet" else self.path.parent
        super().__init__(f"{self.problem}; check the corpus with `tinyschool verify {root}`")


def package_version() -> str:
    try:
        return metadata.version("tinyschool")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0+unknown"


def _digest_file(path: Path, h) -> str:
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(4 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_file(path: Path) -> str:
    return _digest_file(path, hashlib.sha256())


# A shard's checksum in the manifest: XXH3-128 (about 10x faster than sha256 here, which matters
# when an import writes gigabytes; it guards against damage, not against an adversary). Manifests
# written before carry "sha256" instead, which `verify` still checks.
CHECKSUM = "xxh3_128"


def checksum_file(path: Path) -> str:
    return _digest_file(path, xxhash.xxh3_128())


def shard_checksum(entry: dict[str, Any]) -> str | None:
    """The checksum recorded for a shard, whichever algorithm wrote it."""
    return entry.get(CHECKSUM) or entry.get("sha256")


def _checksum_matches(path: Path, entry: dict[str, Any]) -> bool:
    if CHECKSUM in entry:
        return checksum_file(path) == entry[CHECKSUM]
    if "sha256" in entry:
        return sha256_file(path) == entry["sha256"]
    return True


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(d: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def swap_dir_into_place(tmp: Path, out: Path) -> None:
    """Replace folder `out` by the finished folder `tmp` (the old one is removed only after the swap)."""
    import shutil

    old = out.parent / f".{out.name}.replaced"
    if old.exists():
        shutil.rmtree(old)
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    _fsync_dir(out.parent)
    if old.exists():
        shutil.rmtree(old)


def write_parquet_atomic(table: pa.Table, path: Path, row_group_size: int = 8192) -> None:
    """Write a zstd Parquet file via temp file + rename. Deterministic bytes for the same table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(
        table,
        tmp,
        compression="zstd",
        row_group_size=row_group_size,
        # no created_by with a version string that changes between installs
        write_statistics=True,
        store_schema=True,
    )
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class Corpus:
    """A corpus folder. Cheap to construct; the manifest is read on demand."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    # ---- manifest -------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def exists(self) -> bool:
        return self.manifest_path.exists()

    def manifest(self) -> dict[str, Any]:
        if not self.manifest_path.exists():
            raise CorpusError(f"{self.root}: not a corpus (no {MANIFEST}); create it with `tinyschool generate` or `tinyschool import`")
        try:
            return json.loads(self.manifest_path.read_text())
        except json.JSONDecodeError as e:
            raise CorpusError(f"{self.manifest_path}: manifest is not valid JSON ({e})") from None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _write_manifest(self, m: dict[str, Any]) -> None:
        atomic_write_bytes(self.manifest_path, (json.dumps(m, indent=2, sort_keys=True) + "\n").encode())

    def init(self, name: str, recipe: dict[str, Any] | None = None, kind: str = "generated") -> "Corpus":
        """Create the manifest if missing; keep an existing one (its recipe is checked by the caller)."""
        with self._locked():
            if self.manifest_path.exists():
                return self
            m = {
                "name": name,
                "kind": kind,
                "schema_version": SCHEMA_VERSION,
                "package_version": package_version(),
                "recipe": recipe or {},
                "stages": {s: {"shards": {}, "complete": False, "info": {}} for s in STAGES},
            }
            self._write_manifest(m)
        return self

    def update_manifest(self, fn) -> dict[str, Any]:
        with self._locked():
            m = self.manifest()
            fn(m)
            self._write_manifest(m)
            return m

    # ---- shards ---------------------------------------------------------------------------
    def stage_dir(self, stage: str) -> Path:
        if stage not in STAGES:
            raise CorpusError(f"unknown stage {stage!r} (one of {', '.join(STAGES)})")
        return self.root / stage

    def shard_path(self, stage: str, name: str) -> Path:
        return self.stage_dir(stage) / f"{name}.parquet"

    def write_shard(self, stage: str, name: str, table: pa.Table) -> dict[str, Any]:
        path = self.shard_path(stage, name)
        write_parquet_atomic(table, path)
        return self.register_shard(stage, name, rows=table.num_rows)

    def register_shard(self, stage: str, name: str, rows: int) -> dict[str, Any]:
        """Record a shard file already in place (written by this or another process)."""
        path = self.shard_path(stage, name)
        entry = {"file": f"{stage}/{name}.parquet", "rows": rows, "bytes": path.stat().st_size, CHECKSUM: checksum_file(path)}

        def add(m):
            m["stages"][stage]["shards"][name] = entry
            m["stages"][stage]["complete"] = False

        self.update_manifest(add)
        return entry

    def clear_stage(self, stage: str) -> None:
        """Forget every shard of a stage (files are removed after the manifest no longer names them)."""
        old = self.shard_names(stage)

        def reset(m):
            m["stages"][stage] = {"shards": {}, "complete": False, "info": {}}

        self.update_manifest(reset)
        for name in old:
            with contextlib.suppress(FileNotFoundError):
                self.shard_path(stage, name).unlink()

    def mark_complete(self, stage: str, info: dict[str, Any] | None = None) -> None:
        def done(m):
            m["stages"][stage]["complete"] = True
            if info is not None:
                m["stages"][stage]["info"] = info

        self.update_manifest(done)

    def is_complete(self, stage: str) -> bool:
        return self.exists() and bool(self.manifest()["stages"].get(stage, {}).get("complete"))

    def shard_entries(self, stage: str) -> dict[str, dict[str, Any]]:
        if not self.exists():
            return {}
        return dict(sorted(self.manifest()["stages"].get(stage, {}).get("shards", {}).items()))

    def shard_names(self, stage: str) -> list[str]:
        return list(self.shard_entries(stage))

    def shard_files(self, stage: str) -> list[Path]:
        return [self.root / e["file"] for e in self.shard_entries(stage).values()]

    def read_shard(self, stage: str, name: str, columns: list[str] | None = None, check: bool = False) -> pa.Table:
        entry = self.shard_entries(stage).get(name)
        path = self.shard_path(stage, name)
        if entry is None:
            raise CorpusError(f"{path}: shard {name!r} is not in the manifest of {self.root}")
        return read_shard_file(path, columns=columns, expect=entry if check else None)

    def iter_stage(self, stage: str, columns: list[str] | None = None) -> Iterator[tuple[str, pa.Table]]:
        for name in self.shard_names(stage):
            yield name, self.read_shard(stage, name, columns=columns)

    def read_stage(self, stage: str, columns: list[str] | None = None) -> pa.Table | None:
        tables = [t for _, t in self.iter_stage(stage, columns)]
        return pa.concat_tables(tables) if tables else None

    def check_files(self, stage: str) -> None:
        """The cheap check of a stage (no read): every shard present with its recorded size."""
        for name, entry in self.shard_entries(stage).items():
            check_shard_file(self.shard_path(stage, name), entry)

    def count(self, stage: str) -> int:
        return sum(e["rows"] for e in self.shard_entries(stage).values())

    # ---- verification ---------------------------------------------------------------------
    def verify(self) -> list[str]:
        """Check every shard of every stage: present, checksum, row count, readable. Returns problems."""
        return [p for problems in self.verify_stages().values() for p in problems]

    def verify_stages(self) -> dict[str, list[str]]:
        """Problems by stage ("manifest" for the manifest itself), every stage present as a key."""
        problems: dict[str, list[str]] = {"manifest": [], **{s: [] for s in STAGES}}
        m = self.manifest()
        if m.get("schema_version") != SCHEMA_VERSION:
            problems["manifest"].append(f"{self.manifest_path}: schema_version {m.get('schema_version')} "
                                        f"(this tinyschool reads {SCHEMA_VERSION})")
        for stage in STAGES:
            for name, entry in self.shard_entries(stage).items():
                path = self.root / entry["file"]
                try:
                    read_shard_file(path, expect=entry)
                except CorruptShardError as e:
                    problems[stage].append(e.problem)
                except CorpusError as e:
                    problems[stage].append(str(e))
        return problems


def check_shard_file(path: Path, entry: dict[str, Any]) -> None:
    """The cheap check (no read): the shard is there with the size the manifest records."""
    try:
        size = Path(path).stat().st_size
    except FileNotFoundError:
        raise CorruptShardError(path, "file is missing") from None
    if size != entry.get("bytes", size):
        raise CorruptShardError(path, f"size {size} bytes, manifest says {entry['bytes']} (truncated or rewritten)")


def read_shard_schema(path: Path) -> pa.Schema:
    """A shard's Arrow schema from its footer; damage is a CorruptShardError naming the file."""
    path = Path(path)
    if not path.exists():
        raise CorruptShardError(path, "file is missing")
    try:
        return pq.read_schema(path)
    except Exception as e:  # pyarrow raises several types for damaged files
        raise CorruptShardError(path, f"unreadable Parquet ({type(e).__name__}: {e})") from None


def read_shard_file(path: Path, columns: list[str] | None = None, expect: dict[str, Any] | None = None) -> pa.Table:
    """Read one Parquet shard; any damage is reported as CorruptShardError naming the file."""
    path = Path(path)
    if not path.exists():
        raise CorruptShardError(path, "file is missing")
    if expect is not None:
        check_shard_file(path, expect)
        if not _checksum_matches(path, expect):
            raise CorruptShardError(path, "checksum does not match the manifest")
    try:
        table = pq.read_table(path, columns=columns)
    except Exception as e:  # pyarrow raises several types for damaged files
        raise CorruptShardError(path, f"unreadable Parquet ({type(e).__name__}: {e})") from None
    if expect is not None and table.num_rows != expect.get("rows", table.num_rows):
        raise CorruptShardError(path, f"{table.num_rows} rows, manifest says {expect['rows']}")
    return table
