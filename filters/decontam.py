"""Decontamination: drop a document that shares a word n-gram (13 by default) with an eval item.

Reusable on its own::

    index = EvalIndex.load([EvalSet(name="gsm8k", path=".../train.jsonl", field="question")], ngram=13)
    hit = index.match_text("... some document ...")   # None or ("gsm8k", "17")

Eval texts are tokenized like documents (lower-case word tokens, `filters.text.WORD_RE`); the
n-gram hashes of every item go into one sorted array, so checking a document is one vectorized
search. An item shorter than n words cannot be matched (and is counted in `short_items`). The item
id is the item's `id_field` or its row number counted from 0.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from corpora.errors import UserError
from filters.config import EvalSet
from filters.text import WORD_RE, ngram_hashes, token_hashes


class EvalSetError(UserError):
    pass


def read_eval_items(es: EvalSet) -> list[tuple[str, str]]:
    """(item id, text) of every row of an eval set; errors name the file, the line and the field."""
    path = Path(es.path)
    if not path.exists():
        raise EvalSetError(f"{path}: eval set {es.name!r} not found")
    rows: list[tuple[str, str]] = []
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        cols = [es.field] + ([es.id_field] if es.id_field else [])
        try:
            t = pq.read_table(path, columns=cols)
        except Exception as e:
            raise EvalSetError(f"{path}: eval set {es.name!r}: cannot read field(s) {cols}: {e}") from None
        texts = t.column(es.field).to_pylist()
        ids = t.column(es.id_field).to_pylist() if es.id_field else range(len(texts))
        return [(str(i), str(x or "")) for i, x in zip(ids, texts)]
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise EvalSetError(f"{path}:{line_no}: invalid JSON ({e.msg})") from None
            if es.field not in obj:
                raise EvalSetError(f"{path}:{line_no}: no field {es.field!r}")
            item_id = obj.get(es.id_field) if es.id_field else len(rows)
            if es.id_field and item_id is None:
                raise EvalSetError(f"{path}:{line_no}: no id field {es.id_field!r}")
            rows.append((str(item_id), str(obj[es.field] or "")))
    return rows


@dataclass
class EvalIndex:
    ngram: int
    hashes: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))  # sorted n-gram hashes
    owners: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))  # item index of each hash
    items: list[tuple[str, str]] = field(default_factory=list)  # (set name, item id)
    short_items: int = 0
    digest: str = ""  # of the eval data, so a changed eval set redoes the stage
    _seen: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=bool), repr=False, compare=False)  # see __post_init__

    def __post_init__(self) -> None:
        # most documents share nothing with the eval sets: a table of booleans indexed by the top
        # bits of a hash says, in one numpy gather, which of a document's n-grams may be in the
        # index (about 16 table entries per hash, so few false candidates); only those candidates
        # go through the binary search
        bits = min(max((16 * len(self.hashes)).bit_length(), 16), 24)
        self._shift = np.uint64(64 - bits)
        self._seen = np.zeros(1 << bits, dtype=bool)
        self._seen[self.hashes >> self._shift] = True

    @classmethod
    def load(cls, eval_sets: list[EvalSet], ngram: int = 13) -> "EvalIndex":
        hs, owners, items, short = [], [], [], 0
        h = hashlib.sha256(str(ngram).encode())
        for es in eval_sets:
            h.update(Path(es.path).read_bytes() if Path(es.path).exists() else b"")
            h.update(json.dumps(es.model_dump(), sort_keys=True).encode())
            for item_id, text in read_eval_items(es):
                g = ngram_hashes(token_hashes(WORD_RE.findall(text.lower())), ngram)
                if len(g) == 0:
                    short += 1
                    continue
                hs.append(g)
                owners.append(np.full(len(g), len(items), dtype=np.int64))
                items.append((es.name, item_id))
        if not hs:
            return cls(ngram, items=items, short_items=short, digest=h.hexdigest())
        allh, allo = np.concatenate(hs), np.concatenate(owners)
        order = np.lexsort((allo, allh))  # by hash, then by the first item that has it
        return cls(ngram, allh[order], allo[order], items, short, h.hexdigest())

    def __len__(self) -> int:
        return len(self.items)

    def may_match(self, ngrams: np.ndarray) -> np.ndarray:
        """Per n-gram hash: might it be in the index (False: it is not). One table lookup each."""
        if len(self.hashes) == 0:
            return np.zeros(len(ngrams), dtype=bool)
        return self._seen[ngrams >> self._shift]

    def contains(self, ngrams: np.ndarray) -> np.ndarray:
        """Per n-gram hash: is it in the index (exactly). The table rules most out; the rest are
        searched. A document has a hundred-odd n-grams, so a few pass the table by chance: this
        exact test, over a shard's n-grams at once, is what tells the documents with a match."""
        out = self.may_match(ngrams)  # a new array: fancy indexing copies
        pos = np.flatnonzero(out)
        if len(pos):
            cand = ngrams[pos]
            idx = np.searchsorted(self.hashes, cand)
            idx[idx == len(self.hashes)] = 0
            out[pos] = self.hashes[idx] == cand
        return out

    def match_ngrams(self, doc_ngrams: np.ndarray) -> tuple[str, str] | None:
        """The first eval item (in eval-set order) sharing an n-gram with the document, or None."""
        if len(self.hashes) == 0 or len(doc_ngrams) == 0:
            return None
        hit = self.contains(doc_ngrams)
        if not hit.any():
            return None
        # the index is sorted by hash, then owner: the leftmost position of a hash has its first item
        pos = np.searchsorted(self.hashes, doc_ngrams[hit])
        return self.items[int(self.owners[pos].min())]

    def match_text(self, text: str) -> tuple[str, str] | None:
        return self.match_ngrams(ngram_hashes(token_hashes(WORD_RE.findall(text.lower())), self.ngram))

    def reason(self, hit: tuple[str, str]) -> str:
        return f"decontam:{hit[0]}:{hit[1]}"
