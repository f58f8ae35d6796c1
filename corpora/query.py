"""DuckDB over a corpus: views `raw`, `annotated`, `clean` over the Parquet shards in place.

One command opens one in-memory DuckDB connection (`CorpusViews`) and defines the three views on
it; nothing is written inside the corpus. Only read statements are let through: a query cannot
change the corpus, and an attempt says so clearly.

A damaged shard (missing, truncated, unreadable) breaks only its own stage: a query of another
stage works, and a query that touches the damaged stage stops with one line naming the shard.
Written for DuckDB 2.0 (`duckdb>=2.0,<3` in pyproject.toml): `get_table_names`,
`extract_statements` and `DuckDBPyRelation.to_arrow_table`.
"""
from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pyarrow as pa

from corpora.schema import STAGES
from corpora.store import Corpus, CorpusError, CorruptShardError, check_shard_file

READ_STATEMENTS = {"SELECT", "EXPLAIN", "PRAGMA", "RELATION"}


class ReadOnlyQueryError(CorpusError):
    pass


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


class CorpusViews:
    """One in-memory DuckDB connection with a view per stage over the shards in place."""

    def __init__(self, corpus: Corpus):
        corpus.manifest()  # raises a clear error when the folder is not a corpus
        self.corpus = corpus
        self.broken: dict[str, CorruptShardError] = {}
        self._files: dict[str, Path] = {}  # resolved path -> shard path as the manifest names it
        self.con = duckdb.connect(":memory:")
        try:
            for stage in STAGES:
                self._define(stage)
        except BaseException:
            self.con.close()
            raise

    def _define(self, stage: str) -> None:
        files = self.corpus.shard_files(stage)
        entries = list(self.corpus.shard_entries(stage).values())
        for path, entry in zip(files, entries):
            self._files[str(path.resolve())] = path
            try:  # cheap: presence and size against the manifest (a checksum is `verify`'s job)
                check_shard_file(path, entry)
            except CorruptShardError as e:
                self.broken[stage] = e
                break
        if files and stage not in self.broken:
            lst = "[" + ", ".join(_sql_str(str(p.resolve())) for p in files) + "]"
            try:
                self.con.execute(f"CREATE VIEW {stage} AS SELECT * FROM read_parquet({lst}, union_by_name = true)")
                return
            except duckdb.Error as e:
                self.broken[stage] = self._shard_error(e) or self._find_unreadable(files) or CorruptShardError(
                    files[0].parent, _first_line(e))
        self.con.execute(f"CREATE VIEW {stage} AS SELECT NULL::VARCHAR AS id, NULL::VARCHAR AS text WHERE false")

    def _shard_error(self, e: duckdb.Error) -> CorruptShardError | None:
        """The shard a DuckDB error names in its first line, as a CorruptShardError (else None)."""
        line = _first_line(e)
        for resolved, path in self._files.items():
            if resolved in line:
                return CorruptShardError(path, f"unreadable Parquet ({line.replace(repr(resolved), 'the file')})")
        return None

    def _find_unreadable(self, files: list[Path]) -> CorruptShardError | None:
        for p in files:
            try:
                self.con.execute(f"SELECT count(*) FROM read_parquet({_sql_str(str(p.resolve()))})").fetchone()
            except duckdb.Error as e:
                return CorruptShardError(p, f"unreadable Parquet ({_first_line(e)})")
        return None

    def check(self, stages) -> None:
        """Raise the damaged-shard error of the first of `stages` that has one."""
        for stage in STAGES:
            if stage in stages and stage in self.broken:
                raise self.broken[stage]

    def arrow(self, sql: str) -> pa.Table:
        """Run read-only SQL and return a pyarrow Table."""
        check_read_only(sql)
        self.check(stages_read(sql))
        try:
            rel = self.con.sql(sql)
            return pa.table({}) if rel is None else rel.to_arrow_table()
        except duckdb.Error as e:
            raise self._shard_error(e) or CorpusError(f"SQL error: {_first_line(e)}") from None

    def rows(self, sql: str) -> list[dict]:
        return self.arrow(sql).to_pylist()

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "CorpusViews":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def stages_read(sql: str) -> set[str]:
    """The stages a query reads, as DuckDB's parser names its tables; where the parser cannot tell
    without the views (a lateral `unnest(column)` in FROM fails to bind there), every stage the text
    names. A query that is wrong fails when it runs, with DuckDB's own message."""
    try:
        return {t.lower() for t in duckdb.get_table_names(sql)}
    except duckdb.Error:
        words = set(re.findall(r"[a-z_]+", sql.lower()))
        return {s for s in STAGES if s in words}


def check_read_only(sql: str) -> None:
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as e:
        raise CorpusError(f"SQL error: {e}") from None
    if not statements:
        raise CorpusError("empty query")
    for st in statements:
        kind = st.type.name
        if kind not in READ_STATEMENTS:
            raise ReadOnlyQueryError(
                f"`tinyschool query` is read-only: {_article(kind)} {kind} statement is refused "
                "(the corpus changes only through its stages; copy the result with --format parquet --output FILE)")


def _article(word: str) -> str:
    return "an" if word[:1].upper() in "AEIOU" else "a"


def query_arrow(corpus: Corpus, sql: str) -> pa.Table:
    """Run read-only SQL on a connection of its own (one query; open `CorpusViews` for several)."""
    with CorpusViews(corpus) as views:
        return views.arrow(sql)
