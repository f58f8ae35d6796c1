"""Documents for training: the `clean` stage of a corpus when it has shards, else `raw` rows that succeeded."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import prompts
from corpora import Corpus, CorpusError
from corpora.errors import UserError
from corpora.store import shard_checksum


class CurriculumError(UserError):
    """A problem with a curriculum or its data, with a one-line message for the user."""


def load_documents(path: str | Path) -> tuple[pa.Table, str]:
    """All columns of the documents to train on, and the stage they came from."""
    corpus = Corpus(path)
    try:
        corpus.manifest()
    except CorpusError as e:
        raise CurriculumError(str(e)) from None
    stage = "clean" if corpus.shard_names("clean") else "raw"
    table = corpus.read_stage(stage)
    if table is None:
        raise CurriculumError(f"{corpus.root}: no documents (neither clean nor raw shards); run `tinyschool run` first")
    if stage == "raw":
        ok = pc.and_(pc.is_null(table["error"]), pc.not_equal(table["text"], ""))
        table = table.filter(ok)
    else:
        table = table.filter(pc.not_equal(table["text"], ""))
    if table.num_rows == 0:
        raise CurriculumError(f"{corpus.root}: {stage} stage has no usable documents")
    return table, stage


def load_heldout(name: str) -> tuple[pa.Table, str]:
    """A fixed held-out set (`heldout_from`): (id, text) of a corpus folder, a JSONL file with a `text`
    field (and an optional `id`), or a bare name in prompts/eval; and its signature (a hash of the
    documents). Ids get a `heldout:` prefix, so they cannot collide with the training corpus's."""
    path = prompts.resolve("eval", name, ".jsonl")
    if path.is_dir():
        table, _ = load_documents(path)
        ids, texts = table["id"].to_pylist(), table["text"].to_pylist()
    elif path.is_file():
        ids, texts = [], []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                texts.append(str(row["text"]))
            except (json.JSONDecodeError, KeyError, TypeError):
                raise CurriculumError(f"heldout_from {path}:{n}: not a JSON object with a `text` field") from None
            ids.append(str(row.get("id", f"line{n}")))
    else:
        raise CurriculumError(f"heldout_from: {path} is neither a corpus folder nor a JSONL file")
    keep = [i for i, t in enumerate(texts) if t.strip()]
    if not keep:
        raise CurriculumError(f"heldout_from {path}: no documents")
    table = pa.table({"id": [f"heldout:{ids[i]}" for i in keep], "text": [texts[i] for i in keep]})
    sig = hashlib.sha256(json.dumps([table["id"].to_pylist(), table["text"].to_pylist()]).encode()).hexdigest()[:16]
    return table, sig


def corpus_signature(path: str | Path) -> str:
    """A hash of the shards (checksums and row counts) a training run would read: it changes when
    the corpus grows or is cleaned again, so that stale prepared data is never reused."""
    corpus = Corpus(path)
    stage = "clean" if corpus.shard_names("clean") else "raw"
    entries = {n: (shard_checksum(e), e.get("rows")) for n, e in corpus.shard_entries(stage).items()}
    return hashlib.sha256(repr((stage, sorted(entries.items()))).encode()).hexdigest()[:16]


def _unit_hash(key: str, seed: int) -> float:
    h = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def split_heldout(ids: list[str], fraction: float, seed: int = 0) -> np.ndarray:
    """A boolean mask of held-out documents, decided by a hash of each id (stable as the corpus grows)."""
    if not 0 < fraction < 1:
        raise CurriculumError(f"heldout fraction must be between 0 and 1 (got {fraction})")
    mask = np.array([_unit_hash(i, seed) < fraction for i in ids], dtype=bool)
    if len(ids) >= 2 and not mask.any():  # a tiny corpus still gets a held-out document
        mask[int(np.argmin([_unit_hash(i, seed) for i in ids]))] = True
    if mask.all():
        raise CurriculumError(f"heldout fraction {fraction} leaves no training documents ({len(ids)} in all)")
    return mask
