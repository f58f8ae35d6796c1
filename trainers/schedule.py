"""From a curriculum's settings to the batch scheduler that feeds the trainer.

Two batchings (a registry): `windows` (fixed-length windows over the documents concatenated in
curriculum order; the pacing function limits the pool) and `decomposed` (Dataset Decomposition:
power-of-two chunks of single documents, one length bucket per step). Either takes a difficulty
order with a pacing function, or CLIMB's vocabulary curriculum (`vocabulary_pacing`), and a staged
mixture of several corpora.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from curricula import order_documents, pacing_function
from curricula.decomposition import DecomposedPool, DecomposedScheduler
from curricula.scheduler import MixtureStage, Scheduler, TokenPool
from curricula.vocabulary import VocabularyPool, token_ranks, vocabulary_levels
from trainers.config import CurriculumConfig, Experiment

if TYPE_CHECKING:  # a type only: prepare -> train -> schedule must not loop back
    from trainers.prepare import Prepared


def _windows(src, index, order, prep, cur, context, seed, vocab):
    if vocab is not None:
        return VocabularyPool(src.docs, index, vocab[0], vocab[1], prep.eot, seed, name=src.name)
    return TokenPool(src.docs, order, prep.eot, name=src.name)


def _decomposed(src, index, order, prep, cur, context, seed, vocab):
    levels = n_vocab = None
    if vocab is not None:  # documents by vocabulary level, ties in a seeded order (as VocabularyPool)
        lv = vocabulary_levels([src.docs[int(i)] for i in index], vocab[0], prep.eot)
        shuffle = np.random.default_rng([seed, 0x70CAB]).permutation(len(index))
        by_level = shuffle[np.argsort(lv[shuffle], kind="stable")]
        order, levels, n_vocab = index[by_level], lv[by_level], vocab[1]
    return DecomposedPool(src.docs, order, prep.eot, max_len=context, min_len=cur.min_chunk, name=src.name,
                          levels=levels, n_vocab=n_vocab or 0)


# batching -> (pool builder, scheduler class)
BATCHING: dict[str, tuple[Callable, type[Scheduler]]] = {
    "windows": (_windows, Scheduler),
    "decomposed": (_decomposed, DecomposedScheduler),
}


def build_scheduler(prep: Prepared, cur: CurriculumConfig, exp: Experiment, seed: int, context: int,
                    total_steps: int) -> Scheduler:
    spec = cur.scorer or exp.scorer
    names = ["main"] + ([n for n in exp.corpora if any(n in s.weights for s in cur.mixture)] if cur.mixture else [])
    make_pool, sched_cls = BATCHING[cur.batching]
    vocab = None
    if cur.vocabulary_pacing:
        vocab = token_ranks([[prep.sources[n].docs[i] for i in prep.sources[n].train_index()] for n in names], prep.eot)
        pace = pacing_function(cur.vocabulary_pacing, start=cur.vocabulary_start, ramp=cur.ramp)
    else:
        pace = pacing_function(cur.pacing, start=cur.start, ramp=cur.ramp, **({"stages": cur.stages} if cur.pacing == "step" else {}))
    pools = {}
    for name in names:
        src = prep.sources[name]
        idx = src.train_index()
        scores = src.scores.get(spec, np.zeros(len(src.ids)))[idx] if cur.order != "random" else np.zeros(len(idx))
        order = idx[order_documents(cur.order, scores, seed)]
        pools[name] = make_pool(src, idx, order, prep, cur, context, seed, vocab)
    ctx_pace = pacing_function(cur.context_pacing, start=cur.context_start, ramp=cur.ramp) if cur.context_pacing else None
    wanted = {s.until: s for s in cur.mixture}  # a repeated `until`: the last stage given wins
    stages = [MixtureStage(s.until, dict(s.weights)) for s in sorted(wanted.values(), key=lambda s: s.until)]
    return sched_cls(pools, exp.train.batch_size, context, total_steps, seed, pacing=pace, context_pacing=ctx_pace,
                     stages=stages)
