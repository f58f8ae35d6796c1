"""Cleaning: per-document annotators (a registry), exact + MinHash near-dedup, decontamination.

`filters.stage.run_annotate` turns a corpus's `raw` shards into `annotated` and `clean`.
"""
