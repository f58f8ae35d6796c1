"""Cleaning: per-document annotators (a registry), exact + MinHash near-dedup, decontamination.

`tinyschool.stages.annotate` runs `filters.annotate`'s tasks to turn a corpus's `raw` shards into `annotated` and `clean`.
"""
