"""Curricula: which documents a tiny model sees, in which order, and how fast the pool grows.

- documents.py  read a corpus (clean stage, else raw rows without error), split off a held-out set or read a fixed one
- scorers.py    difficulty scorers (a registry): numeric columns, word rarity, model-based loss
- ordering.py   easy-to-hard, hard-to-easy, random
- pacing.py     pacing functions (a registry): how much of the ordered data is available at time t
- scheduler.py  the deterministic, resumable batch scheduler (token pools, sequence-length curriculum,
                staged mixtures of several corpora)
"""
from curricula.documents import CurriculumError, corpus_signature, load_documents, load_heldout, split_heldout
from curricula.ordering import ORDERINGS, order_documents
from curricula.pacing import PACING, pacing_function
from curricula.scorers import SCORERS, make_scorer

__all__ = ["CurriculumError", "corpus_signature", "load_documents", "load_heldout", "split_heldout", "ORDERINGS", "order_documents", "PACING",
           "pacing_function", "SCORERS", "make_scorer"]
