"""The main job's quality figures (issue #15): what share of the stories was kept, and how
child-like the kept ones are. Read from the `annotated` stage with DuckDB."""
from __future__ import annotations

from typing import Any

from corpora import Corpus
from corpora.query import query_arrow

FIGURES = ("kept_frac", "required_all_frac", "oov_mean", "grade_mean")


def corpus_quality(corpus: Corpus) -> dict[str, Any]:
    """kept_frac: kept / generated (failed requests count as not kept); over the kept stories:
    required_all_frac (required verb, noun and adjective all present), oov_mean (mean OOV rate),
    grade_mean (mean Flesch-Kincaid grade). None where a column is missing."""
    if not corpus.count("annotated"):
        return {}
    cols = set(query_arrow(corpus, "SELECT * FROM annotated LIMIT 0").column_names)
    req = "avg(CASE WHEN required_words_present THEN 1.0 ELSE 0.0 END) FILTER (WHERE keep)" if "required_words_present" in cols else "NULL"
    oov = "avg(oov_rate) FILTER (WHERE keep)" if "oov_rate" in cols else "NULL"
    grade = "avg(flesch_kincaid_grade) FILTER (WHERE keep)" if "flesch_kincaid_grade" in cols else "NULL"
    row = query_arrow(corpus, f"""
        SELECT count(*) AS docs, count(*) FILTER (WHERE keep) AS kept,
               {req} AS required_all_frac, {oov} AS oov_mean, {grade} AS grade_mean
        FROM annotated""").to_pylist()[0]
    docs = row["docs"] or 0
    out = {"docs": docs, "kept": row["kept"], "kept_frac": (row["kept"] / docs) if docs else None}
    for k in ("required_all_frac", "oov_mean", "grade_mean"):
        out[k] = None if row[k] is None else float(row[k])
    return out


def quality_rows(q: dict[str, Any]) -> list[tuple[str, str]]:
    def pct(v):
        return "-" if v is None else f"{100 * v:.1f}%"

    return [("kept", f"{q.get('kept')} of {q.get('docs')} ({pct(q.get('kept_frac'))})"),
            ("required verb, noun and adjective all present (kept)", pct(q.get("required_all_frac"))),
            ("mean OOV rate (kept)", pct(q.get("oov_mean"))),
            ("mean Flesch-Kincaid grade (kept)", "-" if q.get("grade_mean") is None else f"{q['grade_mean']:.2f}")]
