"""DuckDB over a corpus: views `raw`, `annotated`, `clean` over the Parquet shards in place.

The views live in a small DuckDB file inside the corpus (rebuilt on every call, it holds no data)
which is then opened read-only, and only read statements are let through: a query cannot change
the corpus, and an attempt says so clearly.
"""
from __future__ import annotations

import os
from pathlib import Path

import duckdb

from corpora.schema import STAGES
from corpora.store import Corpus, CorpusError

READ_STATEMENTS = {"SELECT", "EXPLAIN", "PRAGMA", "RELATION"}


class ReadOnlyQueryError(CorpusError):
    pass


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def build_views(corpus: Corpus) -> Path:
    views_path = corpus.root / ".views.duckdb"
    tmp = views_path.with_name(f".views.duckdb.tmp-{os.getpid()}")
    for p in (tmp, Path(str(tmp) + ".wal")):
        p.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        for stage in STAGES:
            files = [str(p.resolve()) for p in corpus.shard_files(stage)]
            if files:
                lst = "[" + ", ".join(_sql_str(f) for f in files) + "]"
                con.execute(f"CREATE VIEW {stage} AS SELECT * FROM read_parquet({lst}, union_by_name = true)")
            else:
                con.execute(f"CREATE VIEW {stage} AS SELECT NULL::VARCHAR AS id, NULL::VARCHAR AS text WHERE false")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(tmp, views_path)
    return views_path


def connect(corpus: Corpus) -> duckdb.DuckDBPyConnection:
    corpus.manifest()  # raises a clear error when the folder is not a corpus
    path = build_views(corpus)
    return duckdb.connect(str(path), read_only=True)


def check_read_only(sql: str) -> None:
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as e:
        raise CorpusError(f"SQL error: {e}") from None
    if not statements:
        raise CorpusError("empty query")
    for st in statements:
        kind = st.type.name if hasattr(st.type, "name") else str(st.type)
        if kind not in READ_STATEMENTS:
            raise ReadOnlyQueryError(
                f"`tinyschool query` is read-only: a {kind} statement is refused "
                "(the corpus changes only through its stages; copy the result with --format parquet --output FILE)")


def query_arrow(corpus: Corpus, sql: str):
    """Run read-only SQL and return a pyarrow Table."""
    import pyarrow as pa

    check_read_only(sql)
    con = connect(corpus)
    try:
        rel = con.sql(sql)
        if rel is None:
            return pa.table({})
        for name in ("to_arrow_table", "fetch_arrow_table", "arrow"):  # the name moved between DuckDB versions
            if hasattr(rel, name):
                return getattr(rel, name)()
        raise CorpusError("this DuckDB cannot return Arrow tables")
    except duckdb.Error as e:
        raise CorpusError(f"SQL error: {str(e).splitlines()[0]}") from None
    finally:
        con.close()
