"""Word n-gram language models: the baselines a tiny neural model must beat on minimal pairs.

Interpolated Kneser-Ney (Chen & Goodman 1998, the interpolated form with one absolute discount per
order, D = n1 / (n1 + 2 n2) from the count-of-counts) over lower-cased words and punctuation.
The highest order uses raw counts, every lower order continuation counts (how many distinct words
precede the n-gram), and the unigram level is interpolated with a uniform distribution over the
vocabulary plus one unknown word, so an unseen word has a small non-zero probability. Sentences
are padded with order-1 `<s>` tokens; no end token is scored (as for the neural models, whose
sentence score is the sum over its tokens after a BOS).

`NGramModel(1)` is a discounted unigram model, `NGramModel(2)` a Kneser-Ney bigram model,
`NGramModel(5)` the smoothed 5-gram model. Pure Python dictionaries: counting goes through
`collections.Counter` over zipped tuples (a C loop), a few seconds for a million words.
"""
from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from typing import Iterable, Sequence

import numpy as np

WORD = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]")
SENT_END = {".", "!", "?"}
BOS = "<s>"


def words(text: str) -> list[str]:
    """Lower-cased words and punctuation marks, the unit of the n-gram models and of vocabulary checks."""
    return WORD.findall(text.lower())


def sentences(text: str) -> Iterable[list[str]]:
    """The words of a document, cut after every . ! or ? (a story is many sentences; a minimal pair is one)."""
    cur: list[str] = []
    for w in words(text):
        cur.append(w)
        if w in SENT_END:
            yield cur
            cur = []
    if cur:
        yield cur


class NGramModel:
    def __init__(self, order: int):
        if order < 1:
            raise ValueError("order must be >= 1")
        self.order = order
        self.name = {1: "unigram", 2: "bigram"}.get(order, f"{order}-gram")

    def fit(self, texts: Iterable[str]) -> "NGramModel":
        n = self.order
        pad = [BOS] * (n - 1)
        top: Counter = Counter()
        for text in texts:
            for s in sentences(text):
                seq = pad + s
                top.update(zip(*(seq[i:] for i in range(n))))
        # counts[k]: k-gram -> count (raw at the top order, continuation below it)
        counts: list[dict] = [dict() for _ in range(n + 1)]
        counts[n] = dict(top)
        for k in range(n - 1, 0, -1):
            counts[k] = dict(Counter(g[1:] for g in counts[k + 1]))
        self.vocab = {g[0] for g in counts[1]} - {BOS}
        self.discount = [0.0] * (n + 1)
        self.ctx_total: list[dict] = [dict() for _ in range(n + 1)]
        self.ctx_types: list[dict] = [dict() for _ in range(n + 1)]
        for k in range(1, n + 1):
            coc = Counter(v for v in counts[k].values() if v <= 2)
            n1, n2 = coc.get(1, 0), coc.get(2, 0)
            # Ney's estimate; with no n-gram seen once it would be 0, leaving unseen words probability 0
            self.discount[k] = n1 / (n1 + 2 * n2) if n1 else 0.5
            tot, typ = defaultdict(int), defaultdict(int)
            for g, c in counts[k].items():
                tot[g[:-1]] += c
                typ[g[:-1]] += 1
            self.ctx_total[k], self.ctx_types[k] = dict(tot), dict(typ)
        self.counts = counts
        self._uniform = 1.0 / (len(self.vocab) + 1)
        return self

    def prob(self, history: Sequence[str], w: str) -> float:
        """P(w | the last order-1 words of history), interpolated down to the uniform distribution."""
        n = self.order
        h = tuple(history[len(history) - (n - 1):]) if n > 1 else ()
        p = self._uniform
        for k in range(1, n + 1):  # from the unigram up: each level interpolates with the one below
            ctx = h[len(h) - (k - 1):] if k > 1 else ()
            tot = self.ctx_total[k].get(ctx)
            if not tot:
                continue  # unseen context: the lower-order estimate stands
            c = self.counts[k].get(ctx + (w,), 0)
            d = self.discount[k]
            p = max(c - d, 0.0) / tot + d * self.ctx_types[k][ctx] / tot * p
        return p

    def sentence_logprob(self, text: str) -> tuple[float, int]:
        """(natural-log probability, number of words) of one sentence."""
        seq = [BOS] * (self.order - 1) + words(text)
        start = self.order - 1
        # fsum: exactly rounded, so the same words in another order give the very same unigram score (a tie)
        lp = math.fsum(math.log(self.prob(seq[max(0, i - self.order + 1):i], seq[i])) for i in range(start, len(seq)))
        return lp, len(seq) - start

    def score(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        out = [self.sentence_logprob(t) for t in texts]
        return np.array([o[0] for o in out], dtype=np.float64), np.array([o[1] for o in out], dtype=np.int64)
