"""Versioned Arrow schemas of the corpus stages.

`raw` holds every request with its provenance (a failed request is a row with `error` set).
`annotated` is `raw` plus one column per metric, `keep` and `drop_reason`; its extra columns are
decided by the annotators, so only the raw part is fixed here. `clean` has the annotated schema.
"""
from __future__ import annotations

import json
import re
from typing import Any, Iterable, Mapping

import pyarrow as pa

SCHEMA_VERSION = 1
STAGES = ("raw", "annotated", "clean")

SAMPLING_TYPE = pa.struct(
    [
        ("temperature", pa.float64()),
        ("top_p", pa.float64()),
        ("max_tokens", pa.int64()),
        ("seed", pa.int64()),
        ("repetition_penalty", pa.float64()),
    ]
)

RAW_SCHEMA = pa.schema(
    [
        ("id", pa.string()),  # stable hash of recipe, template, slots and sample index
        ("text", pa.string()),  # the document ("" when the request failed)
        ("prompt", pa.string()),  # the rendered user prompt
        ("template", pa.string()),
        ("slots", pa.string()),  # JSON object of the sampled slot values (query with ->> in DuckDB)
        ("backend", pa.string()),
        ("model", pa.string()),
        ("sampling", SAMPLING_TYPE),
        ("finish_reason", pa.string()),  # stop | length | error | ...
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("latency_s", pa.float64()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("error", pa.string()),  # null when the request succeeded
        ("error_kind", pa.string()),  # timeout | rate_limit | server | connection | invalid | ...
        ("sample_index", pa.int64()),
        ("recipe", pa.string()),
        ("meta", pa.string()),  # JSON: extra provenance (import source and line, retries, cache hit...)
    ]
)


SURROGATES = re.compile("[\ud800-\udfff]")


def replace_surrogates(text: str) -> tuple[str, int]:
    """`text` as valid UTF-8: lone surrogates (what JSON escapes like "\\udcff" decode to, and UTF-8
    cannot hold) become U+FFFD. Returns the text and how many were replaced."""
    if not SURROGATES.search(text):
        return text, 0
    return SURROGATES.subn("\ufffd", text)


def _jsonify(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def raw_table(records: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Build a table with RAW_SCHEMA from dict records (slots/meta may be dicts)."""
    cols: dict[str, list] = {f.name: [] for f in RAW_SCHEMA}
    for rec in records:
        for f in RAW_SCHEMA:
            v = rec.get(f.name)
            if f.name in ("slots", "meta"):
                v = _jsonify(v)
            if isinstance(v, str):  # nothing reaches a shard that is not valid UTF-8 (a last guard:
                v = replace_surrogates(v)[0]  # the backends replace and count them where text arrives)
            cols[f.name].append(v)
    return pa.table(cols, schema=RAW_SCHEMA)
