"""Dataset Decomposition's variable-length curriculum (Pouransari et al. 2024, "Dataset Decomposition:
Faster LLM Training with Variable Sequence Length Curriculum", NeurIPS 2024).

Each document, framed as [eot] tokens [eot], is cut into chunks whose lengths are powers of two: the
binary decomposition of its number of next-token predictions, longest first, capped at the context
(a 300-prediction document at context 128 gives 128 + 128 + 32 + 8 + 4; pieces shorter than
`min_len` are dropped). Chunks go to buckets by length. Every batch is drawn from ONE bucket, with
batch size = tokens_per_step / length, so tokens per step stay constant (batch_size * context), and
every row is a piece of a single document: no window mixes two documents, so no attention mask is
needed (the paper's point: no cross-document attention and no wasted padding, by construction).

Which bucket a step uses is drawn in proportion to the tokens the buckets hold (the paper's
"natural" sampling: every token equally likely, as with fixed-length windows). A curriculum's
`context_pacing` caps the longest bucket allowed at progress p at context * f(p) (the paper's
"Grow" curricula: short sequences first); the shortest bucket is always allowed. Several corpora:
the bucket is drawn from the weight-blended token shares, then each row's corpus from the weights
times that corpus's share of the bucket, so the tokens of each corpus match the mixture weights.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from curricula.documents import CurriculumError
from curricula.scheduler import Scheduler
from curricula.vocabulary import allowed_tokens


def decompose(n_pred: int, max_len: int, min_len: int) -> list[int]:
    """Chunk lengths (powers of two, longest first) of a sequence with n_pred next-token predictions."""
    out = []
    while n_pred >= min_len:
        L = min(max_len, 1 << (n_pred.bit_length() - 1))
        out.append(L)
        n_pred -= L
    return out


class DecomposedPool:
    """One corpus's documents (in curriculum order) cut into power-of-two chunks, bucketed by length.

    `tokens` is eot d0 eot d1 eot ...; a chunk of length L starting at s is the inputs tokens[s:s+L]
    and the targets tokens[s+1:s+L+1], all inside one document's [eot ... eot] frame.
    """

    def __init__(self, docs: Sequence[np.ndarray], order: np.ndarray, eot: int, max_len: int, min_len: int = 8,
                 name: str = "main", levels: np.ndarray | None = None, n_vocab: int = 0):
        self.name, self.max_len, self.min_len = name, max_len, min_len
        self.levels, self.n_vocab = levels, n_vocab  # vocabulary curriculum: documents sorted by level
        parts, starts, lengths, rank = [np.array([eot], dtype=np.int32)], [], [], []
        pos, self.dropped = 0, 0  # pos: the leading eot of the current document
        for r, i in enumerate(order):
            d = np.asarray(docs[int(i)], dtype=np.int32)
            parts += [d, np.array([eot], dtype=np.int32)]
            s = pos
            for L in decompose(len(d) + 1, max_len, min_len):
                starts.append(s)
                lengths.append(L)
                rank.append(r)
                s += L
            self.dropped += pos + len(d) + 1 - s
            pos += len(d) + 1
        self.tokens = np.concatenate(parts)
        self.n_docs = len(order)
        starts, lengths, rank = (np.asarray(a, dtype=np.int64) for a in (starts, lengths, rank))
        self.buckets: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # length -> (starts, document ranks), by rank
        for L in sorted(set(lengths.tolist())):
            sel = lengths == L
            self.buckets[L] = (starts[sel], rank[sel])
        if not self.buckets:
            raise CurriculumError(f"corpus {name!r}: no document has {min_len} tokens (the shortest decomposed chunk)")

    def docs_allowed(self, fraction: float) -> int:
        if self.levels is not None:
            return int(np.searchsorted(self.levels, allowed_tokens(fraction, self.n_vocab), side="left"))
        return max(1, int(np.ceil(fraction * self.n_docs - 1e-9)))

    def available(self, fraction: float, max_len: int) -> dict[int, int]:
        """Chunks per bucket (of length <= max_len) whose documents are in the pool at this fraction."""
        n = self.docs_allowed(fraction) if fraction < 1 else self.n_docs
        return {L: int(np.searchsorted(r, n, side="left")) for L, (_, r) in self.buckets.items() if L <= max_len}

    def rows(self, L: int, picks: np.ndarray) -> np.ndarray:
        ramp = np.arange(L + 1, dtype=np.int64)
        return self.tokens[self.buckets[L][0][picks][:, None] + ramp]


@dataclass
class DecomposedScheduler(Scheduler):
    """The batch scheduler of Dataset Decomposition: one length bucket per step, tokens per step constant."""

    def __post_init__(self):
        if self.context & (self.context - 1):
            raise CurriculumError(f"dataset decomposition needs a power-of-two context (got {self.context})")
        if self.tokens_per_step % self.context:
            raise CurriculumError("dataset decomposition: batch_size * context must be a multiple of the context")
        super().__post_init__()

    def _check_pools(self) -> None:
        for pool in self.pools.values():
            if not isinstance(pool, DecomposedPool):
                raise CurriculumError(f"corpus {pool.name!r}: dataset decomposition needs a DecomposedPool")
            if max(pool.buckets) > self.context:
                raise CurriculumError(f"corpus {pool.name!r}: decomposed for {max(pool.buckets)} tokens, more than the context {self.context}")

    def longest(self, step: int) -> int:
        cap = self.context if self.context_pacing is None else self.context * self.context_pacing(self.progress(step))
        return int(cap)

    def plan(self, step: int, rng: np.random.Generator) -> tuple[int, dict[str, np.ndarray]]:
        """(length of this step's bucket, chunk indices per corpus)."""
        frac = self.pacing(self.progress(step))
        w = self.weights_at(step)
        names = [n for n in self.pools if w.get(n, 0.0) > 0]
        avail, shares = {}, {}
        for n in names:
            pool = self.pools[n]
            a = pool.available(frac, self.longest(step))
            if not any(a.values()):  # nothing short enough yet: the shortest bucket is always allowed
                L0 = min(pool.buckets)
                a = {L0: max(1, pool.available(frac, L0).get(L0, 0))}
            tot = sum(L * c for L, c in a.items())
            avail[n] = a
            shares[n] = {L: L * c / tot for L, c in a.items() if c}
        total_w = sum(w[n] for n in names)
        lengths = sorted({L for n in names for L in shares[n]})
        p_len = np.array([sum(w[n] / total_w * shares[n].get(L, 0.0) for n in names) for L in lengths])
        L = lengths[int(rng.choice(len(lengths), p=p_len / p_len.sum()))]
        B = self.tokens_per_step // L
        p_src = np.array([w[n] * shares[n].get(L, 0.0) for n in names])
        src = rng.choice(len(names), size=B, p=p_src / p_src.sum()) if len(names) > 1 else np.zeros(B, dtype=np.int64)
        picks = {}
        for k, n in enumerate(names):
            m = int((src == k).sum())
            if m:
                picks[n] = rng.integers(0, avail[n][L], size=m)
        return L, picks

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, step])
        L, picks = self.plan(step, rng)
        arr = np.concatenate([self.pools[n].rows(L, idx) for n, idx in picks.items()]).astype(np.int64)
        arr = torch.from_numpy(arr)
        return arr[:, :-1].contiguous(), arr[:, 1:].contiguous()

    def context_at(self, step: int) -> int:
        return self.plan(step, np.random.default_rng([self.seed, step]))[0]
