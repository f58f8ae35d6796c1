"""The summary stage: corpus statistics from DuckDB (docs, tokens, word-count quantiles, openings)."""
from __future__ import annotations

from typing import Any

from corpora import STAGES, Corpus
from corpora.query import CorpusViews
from tinyschool.quality import corpus_quality, quality_rows
from tinyschool.ui import print_table


def summary_stage(recipe, corpus: Corpus, args: Any = None) -> None:
    print_stats(corpus)
    q = corpus_quality(corpus)  # how child-like the kept stories are
    if q and recipe.template.startswith("tinystories"):
        print_table("story quality (annotated)", ["", "value"], quality_rows(q))


def print_stats(corpus: Corpus) -> None:
    with CorpusViews(corpus) as views:
        views.check(STAGES)  # a summary of a corpus with a damaged shard would mislead: stop, naming it
        _print_stats(corpus, views.rows)


def _print_stats(corpus: Corpus, one) -> None:
    stage = "clean" if corpus.count("clean") else "raw"
    s = one(f"""
        SELECT count(*) AS docs,
               count(*) FILTER (WHERE error IS NOT NULL) AS errors,
               coalesce(sum(completion_tokens), 0) AS tokens,
               coalesce(sum(len(regexp_split_to_array(trim(text), '\\s+'))) FILTER (WHERE error IS NULL), 0) AS words
        FROM {stage}""")[0]
    print_table(f"corpus {corpus.root} ({stage})", ["docs", "errors", "tokens", "words"],
                [(s["docs"], s["errors"], s["tokens"], s["words"])])
    q = one(f"""
        WITH w AS (SELECT len(regexp_split_to_array(trim(text), '\\s+')) AS n FROM {stage} WHERE error IS NULL AND text <> '')
        SELECT quantile_cont(n, 0.05) AS p5, quantile_cont(n, 0.25) AS p25, quantile_cont(n, 0.5) AS p50,
               quantile_cont(n, 0.75) AS p75, quantile_cont(n, 0.95) AS p95, max(n) AS max FROM w""")[0]
    print_table("word count quantiles", ["p5", "p25", "p50", "p75", "p95", "max"], [tuple(q.values())])
    rows = one(f"""
        WITH o AS (SELECT array_to_string(list_slice(regexp_split_to_array(trim(text), '\\s+'), 1, 3), ' ') AS opening
                   FROM {stage} WHERE error IS NULL AND text <> '')
        SELECT opening, count(*) AS docs, round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS pct
        FROM o GROUP BY opening ORDER BY docs DESC, opening LIMIT 10""")
    print_table("top openings (first three words)", ["opening", "docs", "%"], [(r["opening"], r["docs"], r["pct"]) for r in rows])
