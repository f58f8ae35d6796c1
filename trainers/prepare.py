"""Prepare an experiment once, before any run: held-out split, tokenizer, token ids, difficulty scores.

Writes, beside the runs:
    <out>/tokenizer.json          the byte-level BPE every run of the experiment uses
    <out>/data/<source>.npz       token ids of every document (in corpus order)
    <out>/scores.parquet          one row per document: source, id, split, tokens, bucket, score_<scorer>...
    <out>/prepared.json           what it was made from; a re-run with the same inputs reuses it
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curricula import corpus_signature, load_documents, load_heldout, make_scorer, split_heldout
from trainers.config import Experiment
from trainers.tokenizer import encode_many, eot_id, train_tokenizer


def score_column(spec: str) -> str:
    return "score_" + re.sub(r"[^a-z0-9_]+", "_", spec.lower().replace("column:", "").replace("-", "neg_")).strip("_")


def scorer_for(spec: str, doc_loss: Callable | None = None):
    invert = spec.startswith("-")
    s = spec.lstrip("-")
    if s.startswith("column:"):
        return make_scorer("column", column=s.split(":", 1)[1], invert=invert)
    if s == "model_loss":
        return make_scorer("model_loss", doc_loss=doc_loss)
    scorer = make_scorer(s)
    if invert:
        inner = scorer
        scorer = type("Inverted", (), {"name": "-" + s, "score": lambda self, t: -inner.score(t)})()
    return scorer


@dataclass
class SourceData:
    name: str
    ids: list[str]
    docs: list[np.ndarray]
    heldout: np.ndarray
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    bucket: np.ndarray | None = None

    def train_index(self) -> np.ndarray:
        return np.flatnonzero(~self.heldout)

    def val_index(self) -> np.ndarray:
        return np.flatnonzero(self.heldout)


@dataclass
class Prepared:
    dir: Path
    eot: int
    vocab_size: int
    sources: dict[str, SourceData]
    bucket_names: list[str]
    bucket_scorer: str
    fingerprint: str = ""

    @property
    def tokenizer_path(self) -> Path:
        return self.dir / "tokenizer.json"


def bucket_names(n: int) -> list[str]:
    return {1: ["all"], 2: ["easy", "hard"], 3: ["easy", "medium", "hard"]}.get(n, [f"q{i + 1}" for i in range(n)])


def data_fingerprint(exp: Experiment) -> str:
    """The experiment's data settings and the exact shards of every corpus it reads."""
    sigs = {name: corpus_signature(path) for name, path in exp.sources().items()}
    if exp.heldout_from:
        sigs["heldout_from"] = load_heldout(exp.heldout_from)[1]
    return hashlib.sha256(f"{exp.data_fingerprint()}:{sorted(sigs.items())}".encode()).hexdigest()[:16]


# (experiment, its prepared data) -> per-source document losses under a small reference model: the model_loss
# scorer's; trainers.train.reference_doc_loss trains one with the run's own step (prepare_experiment passes it)
Reference = Callable[[Experiment, "Prepared"], Callable[[str], np.ndarray]]


def prepare(exp: Experiment, log: Callable[[str], None] = lambda s: None, reference: Reference | None = None) -> Prepared:
    """Read every corpus, split held-out documents, train the tokenizer, encode, score and bucket; cached
    in the experiment's folder by a fingerprint of the data settings and shards. The model_loss scorer needs
    `reference` (use trainers.train.prepare_experiment, which passes the trainer's)."""
    out = exp.out_dir
    marker = out / "prepared.json"
    fp = data_fingerprint(exp)
    if marker.exists() and json.loads(marker.read_text()).get("fingerprint") == fp:
        return load_prepared(out)
    out.mkdir(parents=True, exist_ok=True)
    tables, sources = {}, {}
    for name, path in exp.sources().items():
        table, stage = load_documents(path)
        table = table.sort_by("id")  # corpus order independent of shard layout
        ids = table["id"].to_pylist()
        if name == "main" and exp.heldout_from:  # a fixed held-out set: every corpus document trains
            fixed, _ = load_heldout(exp.heldout_from)
            held = np.concatenate([np.zeros(len(ids), dtype=bool), np.ones(fixed.num_rows, dtype=bool)])
            table = pa.concat_tables([table, fixed], promote_options="default")
            ids = table["id"].to_pylist()
        else:
            held = split_heldout(ids, exp.heldout, seed=0)
        tables[name] = table
        sources[name] = SourceData(name, ids, [], held)
        fixed_note = f" (from {exp.heldout_from})" if name == "main" and exp.heldout_from else ""
        log(f"{name}: {table.num_rows} documents from {path} ({stage}), {int(sources[name].heldout.sum())} held out{fixed_note}")
    train_texts = [t for name, table in tables.items() for t, h in zip(table["text"].to_pylist(), sources[name].heldout) if not h]
    tok = train_tokenizer(train_texts, exp.tokenizer.vocab_size, out / "tokenizer.json")
    log(f"tokenizer: byte-level BPE, {tok.get_vocab_size()} tokens, {out / 'tokenizer.json'}")
    for name, table in tables.items():
        sources[name].docs = encode_many(tok, table["text"].to_pylist())
    prep = Prepared(out, eot_id(tok), tok.get_vocab_size(), sources, bucket_names(exp.buckets), exp.scorer, fp)

    doc_loss = None
    if any(s.lstrip("-") == "model_loss" for s in exp.scorers()):
        if reference is None:
            raise ValueError("the model_loss scorer needs a reference model: prepare through trainers.train.prepare_experiment")
        log(f"model_loss: training a reference model ({exp.reference.preset}, {exp.reference.tokens:,} tokens)")
        doc_loss = reference(exp, prep)
    for spec in exp.scorers():
        scorer = scorer_for(spec, doc_loss)
        for name, table in tables.items():
            if spec.lstrip("-") == "model_loss":
                sources[name].scores[spec] = np.asarray(doc_loss(name), dtype=np.float64)
            else:
                sources[name].scores[spec] = scorer.score(table)
    main = sources["main"]
    s = main.scores[exp.scorer]
    edges = np.quantile(s[main.train_index()], np.linspace(0, 1, exp.buckets + 1)[1:-1]) if exp.buckets > 1 else np.array([])
    for src in sources.values():
        src.bucket = np.searchsorted(edges, src.scores[exp.scorer], side="right").astype(np.int64) if src is main else None
    _save(prep, exp, fp)
    return prep


def _save(prep: Prepared, exp: Experiment, fp: str) -> None:
    (prep.dir / "data").mkdir(parents=True, exist_ok=True)
    cols: dict[str, list] = {"source": [], "id": [], "split": [], "tokens": [], "bucket": []}
    specs = exp.scorers()
    for spec in specs:
        cols[score_column(spec)] = []
    for name, src in prep.sources.items():
        lengths = np.array([len(d) for d in src.docs], dtype=np.int64)
        tmp = prep.dir / "data" / f".{name}.tmp.npz"
        np.savez(tmp, tokens=np.concatenate(src.docs) if src.docs else np.zeros(0, np.int32), lengths=lengths)
        os.replace(tmp, prep.dir / "data" / f"{name}.npz")
        cols["source"] += [name] * len(src.ids)
        cols["id"] += src.ids
        cols["split"] += ["heldout" if h else "train" for h in src.heldout]
        cols["tokens"] += lengths.tolist()
        cols["bucket"] += [prep.bucket_names[b] for b in src.bucket] if src.bucket is not None else [None] * len(src.ids)
        for spec in specs:
            cols[score_column(spec)] += src.scores[spec].tolist()
    tmp = prep.dir / ".scores.parquet.tmp"
    pq.write_table(pa.table(cols), tmp, compression="zstd")
    os.replace(tmp, prep.dir / "scores.parquet")
    meta = {"fingerprint": fp, "eot": prep.eot, "vocab_size": prep.vocab_size, "bucket_names": prep.bucket_names,
            "bucket_scorer": exp.scorer, "scorers": {s: score_column(s) for s in specs}, "sources": exp.sources()}
    (prep.dir / "prepared.json").write_text(json.dumps(meta, indent=2) + "\n")


def load_prepared(out: str | Path) -> Prepared:
    out = Path(out)
    meta = json.loads((out / "prepared.json").read_text())
    scores = pq.read_table(out / "scores.parquet").to_pydict()
    sources = {}
    src_col = np.array(scores["source"])
    for name in meta["sources"]:
        sel = np.flatnonzero(src_col == name)
        z = np.load(out / "data" / f"{name}.npz")
        ends = np.cumsum(z["lengths"])
        docs = np.split(z["tokens"], ends[:-1]) if len(ends) else []
        heldout = np.array([scores["split"][i] == "heldout" for i in sel])
        sd = SourceData(name, [scores["id"][i] for i in sel], docs, heldout)
        for spec, col in meta["scorers"].items():
            sd.scores[spec] = np.array([scores[col][i] for i in sel], dtype=np.float64)
        if name == "main":
            sd.bucket = np.array([meta["bucket_names"].index(scores["bucket"][i]) for i in sel], dtype=np.int64)
        sources[name] = sd
    return Prepared(out, meta["eot"], meta["vocab_size"], sources, meta["bucket_names"], meta["bucket_scorer"],
                    meta["fingerprint"])


def share_prepared(src: str | Path, dst: str | Path) -> bool:
    """Copy another folder's prepared data (tokenizer, token ids, scores) into `dst` when `dst` has none:
    experiments that differ only in model, budget or curricula then skip the tokenizer and the scorers.
    `prepare` still checks the fingerprint and prepares afresh if the data settings differ."""
    src, dst = Path(src), Path(dst)
    if not (src / "prepared.json").exists() or (dst / "prepared.json").exists():
        return False
    (dst / "data").mkdir(parents=True, exist_ok=True)
    for f in (src / "data").glob("*.npz"):
        shutil.copyfile(f, dst / "data" / f.name)
    for name in ("tokenizer.json", "scores.parquet", "prepared.json"):  # the marker last
        shutil.copyfile(src / name, dst / f".{name}.tmp")
        os.replace(dst / f".{name}.tmp", dst / name)
    return True
