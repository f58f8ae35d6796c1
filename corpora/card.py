"""The dataset card (README.md) written beside an export: a YAML header the Hugging Face Hub reads,
then the recipe, the model, the counts kept and dropped by reason, the readability distribution
and the license. It holds no timestamps: the same corpus exports to the same bytes.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpora.store import Corpus, package_version, read_shard_schema

if TYPE_CHECKING:
    from corpora.export import ExportStats

# Flesch-Kincaid grade bins: below 1, 1-2, ..., 11-12, 12 and above
GRADE_EDGES = list(range(1, 13))


def _yaml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a valid YAML double-quoted scalar


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                         (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M")):
        if n < limit:
            return label
    return "100M<n<1B"


def _license_yaml(lic: str) -> list[str]:
    """An SPDX-like id goes in `license:`; free text becomes `license: other` with its name."""
    if re.fullmatch(r"[A-Za-z0-9.\-+]+", lic or "") and lic.lower() != "unknown":
        return [f"license: {lic.lower()}"]
    return ["license: other", f"license_name: {_yaml_str(lic or 'unknown')}"]


def _column_counts(corpus: Corpus, stage: str, cols: list[str]) -> Counter:
    """Counts of value tuples of `cols` over a stage, read column-wise shard by shard."""
    c: Counter = Counter()
    for name in corpus.shard_names(stage):
        have = read_shard_schema(corpus.shard_path(stage, name)).names
        present = [x for x in cols if x in have]
        t = corpus.read_shard(stage, name, columns=present)
        if not t.num_rows:
            continue
        if not present:
            c[tuple(None for _ in cols)] += t.num_rows
            continue
        g = t.group_by(present).aggregate([([], "count_all")])
        for row in g.to_pylist():
            c[tuple(row.get(x) for x in cols)] += row["count_all"]
    return c


_DETAIL = re.compile(r"(?:[0-9a-f]{8,}|[0-9]+)")


def reason_family(reason: str) -> str:
    """A drop reason without its per-document detail, the way the cleaning report counts them:
    "exact_duplicate:<id>" -> "exact_duplicate", "decontam:gsm8k:17" -> "decontam:gsm8k"."""
    if reason.startswith(("near_duplicate:", "exact_duplicate:")):  # the detail is the id of the one kept
        return reason.split(":", 1)[0]
    head, sep, last = reason.rpartition(":")
    return head if sep and head and _DETAIL.fullmatch(last) else reason


def _count_failed(corpus: Corpus) -> int:
    n = 0
    for name in corpus.shard_names("raw"):
        t = corpus.read_shard("raw", name, columns=["error"])
        n += int(pc.sum(pc.is_valid(t["error"]).cast(pa.int64())).as_py() or 0)
    return n


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join("" if v is None else str(v) for v in r) + " |" for r in rows]
    return out


def _quantiles(x: np.ndarray) -> list[str]:
    qs = np.quantile(x, [0.05, 0.25, 0.5, 0.75, 0.95])
    return [f"{v:.1f}" for v in qs] + [f"{float(np.mean(x)):.2f}"]


def readability_section(grades: np.ndarray | None, words: np.ndarray | None) -> list[str]:
    lines = ["## Readability", ""]
    if grades is None:
        lines += ["Not measured: this stage has no `flesch_kincaid_grade` column (run `tinyschool annotate` "
                  "and export the `annotated` or `clean` stage to get it).", ""]
    else:
        g = grades[~np.isnan(grades)]
        if not len(g):
            lines += ["No document has a Flesch-Kincaid grade.", ""]
        else:
            lines += [f"Flesch-Kincaid grade level of the {len(g):,} exported documents:", ""]
            lines += _table(["p5", "p25", "median", "p75", "p95", "mean"], [_quantiles(g)])
            counts = np.bincount(np.searchsorted(GRADE_EDGES, g, side="right"), minlength=len(GRADE_EDGES) + 1)
            labels = ["< 1"] + [f"{a}-{a + 1}" for a in GRADE_EDGES[:-1]] + [f">= {GRADE_EDGES[-1]}"]
            rows = []
            for lab, n in zip(labels, counts):
                pct = 100.0 * n / len(g)
                rows.append([lab, f"{n:,}", f"{pct:.1f}", "█" * int(round(pct / 2))])
            lines += [""] + _table(["grade", "documents", "%", ""], rows) + [""]
    if words is not None:
        w = words[~np.isnan(words)]
        if len(w):
            lines += ["Words per document:", ""] + _table(["p5", "p25", "median", "p75", "p95", "mean"], [_quantiles(w)]) + [""]
    return lines


def dataset_card(corpus: Corpus, manifest: dict[str, Any], stats: "ExportStats") -> str:
    recipe = manifest.get("recipe") or {}
    name = manifest.get("name") or corpus.root.name
    kind = manifest.get("kind", "generated")
    lic = str(recipe.get("license") or "unknown")
    raw_models = _column_counts(corpus, "raw", ["backend", "model"])
    failed = _count_failed(corpus)
    ann = _column_counts(corpus, "annotated", ["keep", "drop_reason"]) if corpus.count("annotated") else None

    tags = ["tinyschool", "synthetic" if kind == "generated" else "imported"]
    data_path = {"hf": "data/train-*", "hf-disk": "", "jsonl": "train.jsonl", "txt": "train.txt"}[stats.format]
    head = ["---", *_license_yaml(lic), "language:", "- en", f"pretty_name: {_yaml_str(name)}",
            "size_categories:", f"- {_size_category(stats.rows)}", "task_categories:", "- text-generation",
            "tags:", *[f"- {t}" for t in tags]]
    if stats.format in ("hf", "jsonl"):
        head += ["configs:", "- config_name: default", "  data_files:", "  - split: train", f"    path: {data_path}"]
    head += ["---", ""]

    body = [f"# {name}", ""]
    if recipe.get("description"):
        body += [str(recipe["description"]), ""]
    n_parts = len([f for f in stats.files if f.startswith("data/")])
    how = {"hf": f"{n_parts} Parquet file{'s' if n_parts != 1 else ''} in `data/`; "
                 "load with `datasets.load_dataset(\"parquet\", data_dir=THIS_FOLDER)`",
           "hf-disk": "the layout `Dataset.save_to_disk` writes; load with `datasets.load_from_disk(THIS_FOLDER)`",
           "jsonl": "`train.jsonl`, one JSON object per document",
           "txt": "`train.txt`, each document followed by a line `<|endoftext|>` (the TinyStories layout); "
                  "a separator inside a document is written `<|endoftext\\|>`"}[stats.format]
    body += [f"{stats.rows:,} documents from the `{stats.stage}` stage of a tinyschool corpus, as {how}.", ""]

    # recipe
    body += ["## Recipe", ""]
    shown = _recipe_for_card(recipe)
    body += ["```json", json.dumps(shown, indent=2, sort_keys=True, ensure_ascii=False), "```", ""]

    # model
    body += ["## Model", ""]
    backend = recipe.get("backend") if isinstance(recipe.get("backend"), dict) else {}
    if kind == "import":
        body += [f"None: the documents were imported from `{_source_name(recipe)}`, not generated.", ""]
    elif backend:
        body += [f"Generated with backend `{backend.get('name')}`, model `{backend.get('model')}`.", ""]
    if raw_models:
        rows = [[b, m, f"{n:,}"] for (b, m), n in sorted(raw_models.items(), key=lambda kv: (-kv[1], str(kv[0])))]
        body += ["Documents in the raw stage by backend and model:", ""] + _table(["backend", "model", "rows"], rows) + [""]

    # counts
    body += ["## Counts", ""]
    rows = [["raw rows (generated or imported)", f"{corpus.count('raw'):,}"], ["raw rows that failed", f"{failed:,}"]]
    if ann is not None:
        kept = sum(n for (k, _), n in ann.items() if k is True)
        has_keep = any(k is not None for (k, _) in ann)
        rows.append(["annotated rows", f"{sum(ann.values()):,}"])
        if has_keep:
            rows.append(["kept", f"{kept:,}"])
            rows.append(["dropped", f"{sum(n for (k, _), n in ann.items() if k is False):,}"])
    if corpus.count("clean"):
        rows.append(["clean rows", f"{corpus.count('clean'):,}"])
    rows.append([f"exported ({stats.stage})", f"{stats.rows:,}"])
    if stats.failed_skipped:
        rows.append(["left out: failed rows", f"{stats.failed_skipped:,}"])
    if stats.blank_skipped:
        rows.append(["left out: blank documents (txt)", f"{stats.blank_skipped:,}"])
    if stats.dropped_skipped:
        rows.append(["left out: dropped by the filters", f"{stats.dropped_skipped:,}"])
    body += _table(["", "documents"], rows) + [""]
    if ann is not None and any(k is False for (k, _) in ann):
        reasons: Counter = Counter()
        for (k, r), n in ann.items():
            if k is False:
                reasons[reason_family(r) if r else "(no reason recorded)"] += n
        total = sum(ann.values())
        body += ["Dropped by reason:", ""]
        body += _table(["reason", "documents", "% of annotated"],
                       [[r, f"{n:,}", f"{100.0 * n / total:.1f}"] for r, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))])
        body += [""]
    elif ann is None:
        body += ["Not annotated: no documents were filtered (run `tinyschool annotate` to measure and filter them).", ""]

    body += readability_section(stats.grades, stats.words)

    body += ["## License", "", lic, ""]
    body += ["## Provenance", "",
             f"Made with tinyschool {package_version()} (corpus schema version {manifest.get('schema_version')}). "
             "Every document keeps its provenance: `id`, `backend`, `model`, `template` and `meta` "
             "(for imported documents, the source file and line or row).", ""]
    return "\n".join(head + body)


def _source_name(recipe: dict[str, Any]) -> str:
    src = str((recipe.get("import") or {}).get("source", "?"))
    return src.rstrip("/").rsplit("/", 1)[-1] or src


def _recipe_for_card(recipe: dict[str, Any]) -> dict[str, Any]:
    """The recipe without machine-specific details (absolute paths, file dates, cache locations)."""
    r = json.loads(json.dumps(recipe, default=str))
    for k in ("out", "cache"):
        r.pop(k, None)
    imp = r.get("import")
    if isinstance(imp, dict):
        imp.pop("source_path", None)
        imp["source"] = _source_name(recipe)
        files = imp.pop("files", [])
        imp["files"] = len(files)
        imp["bytes"] = sum(f.get("bytes", 0) for f in files)
    backend = r.get("backend")
    if isinstance(backend, dict):
        for k in ("model_path", "api_key_env", "base_url"):
            backend.pop(k, None)
    return r


__all__ = ["dataset_card", "readability_section"]
