"""The corpus store: Parquet shards, schema, manifest, DuckDB views. Imports no other tinyschool package."""
from corpora.schema import SCHEMA_VERSION, RAW_SCHEMA, raw_table, STAGES
from corpora.store import Corpus, CorruptShardError, CorpusError

__all__ = ["SCHEMA_VERSION", "RAW_SCHEMA", "raw_table", "STAGES", "Corpus", "CorruptShardError", "CorpusError"]
