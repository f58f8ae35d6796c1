"""MinHash signatures (equal to datasketch's), the band/row split, and near-dedup on planted pairs."""
from __future__ import annotations

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH
from dedup_oracle import datasketch_deduplicate

from filters.config import DedupConfig
from filters.dedup import deduplicate, optimal_bands
from filters.minhash import (
    MinHasher,
    shingle_hash32,
    shingle_hashes,
    shingles,
    signatures_for_texts,
)
from filters.text import (
    WORD_RE,
    Doc,
    batch_token_hashes,
    ngram_hash_py,
    ngram_hashes,
    token_hash,
    token_hashes,
)

WORDS = np.array([f"w{i}" for i in range(3000)])


def story(rng: np.random.Generator, n: int = 200) -> list[str]:
    return [str(w) for w in WORDS[rng.integers(0, len(WORDS), size=n)]]


def test_ngram_hashes_equal_the_python_reference():
    toks = "the cat sat on the mat and the cat ran".split()
    h = token_hashes(toks)
    for n in (1, 2, 5, 13):
        assert [int(x) for x in ngram_hashes(h, n)] == [ngram_hash_py(toks[i:i + n]) for i in range(len(toks) - n + 1)]
    d = Doc("x", " ".join(toks))
    assert (d.ngrams(5) == ngram_hashes(h, 5)).all()


def test_batched_tokenizer_equals_the_regex_and_the_python_token_hash():
    """The numpy tokenizer/hasher for ASCII text gives WORD_RE's tokens and `token_hash`'s values;
    non-ASCII texts in the same batch go through the regex."""
    import random

    rng = random.Random(3)
    alphabet = "abZ9'_ -.,\n\t’é日"
    texts = ["Hello, World! don't 'quote' a''b it's_ok x'y'z 123abc", "", "   ", "Ünïcödé wörds’s ok", "'", "a'",
             "'a", "A B\nC", "x" * 10_000, "under_score __x__ 9_9"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))) for _ in range(2000)]
    flat, lens = batch_token_hashes(texts)
    want = [WORD_RE.findall(t.lower()) for t in texts]
    assert lens.tolist() == [len(w) for w in want]
    assert flat.tolist() == [token_hash(tok) for toks in want for tok in toks]
    assert lens[:3].tolist() == [10, 0, 0] and lens[9] == 5  # "don't" one token, "_" splits, "a''b" two


@pytest.mark.parametrize("num_perm,seed,n", [(128, 1, 5), (64, 7, 3), (256, 42, 1)])
def test_signatures_equal_datasketch(num_perm, seed, n):
    rng = np.random.default_rng(seed)
    texts = [" ".join(story(rng, int(rng.integers(0, 120)))) for _ in range(40)] + ["", "one", "two words", "Ünïcödé wörds ok"]
    docs = [Doc(str(i), t) for i, t in enumerate(texts)]
    sigs = MinHasher(num_perm, seed, chunk=500).signatures([shingle_hashes(d, n) for d in docs])
    assert np.array_equal(sigs, signatures_for_texts(texts, n, num_perm, seed))  # the batched path from text
    for d, s in zip(docs, sigs):
        m = MinHash(num_perm=num_perm, seed=seed, hashfunc=shingle_hash32)
        m.update_batch(shingles(d.tokens, n))
        assert np.array_equal(m.hashvalues, s), d.text


@pytest.mark.parametrize("threshold,num_perm", [(0.55, 128), (0.8, 128), (0.5, 64)])
def test_band_split_minimizes_fp_plus_fn_like_datasketch(threshold, num_perm):
    b, r, fp, fn = optimal_bands(threshold, num_perm)
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    assert (b, r) == (lsh.b, lsh.r)
    assert b * r <= num_perm and 0 < fp < 0.2 and 0 < fn < 0.2


def jaccard(a: list[str], b: list[str], n: int) -> float:
    sa = {tuple(a[i:i + n]) for i in range(len(a) - n + 1)}
    sb = {tuple(b[i:i + n]) for i in range(len(b) - n + 1)}
    return len(sa & sb) / len(sa | sb)


def mutate(rng, toks: list[str], k: int) -> list[str]:
    out = list(toks)
    for i in rng.choice(len(out), size=k, replace=False):
        out[i] = str(WORDS[rng.integers(len(WORDS))])
    return out


@pytest.mark.slow
def test_planted_near_duplicates_found_and_dissimilar_pairs_not_merged():
    """≥99% of pairs with Jaccard ≥ 0.8 end in one cluster; ≤1% of pairs under 0.5 do."""
    rng = np.random.default_rng(0)
    cfg = DedupConfig()
    docs: list[list[str]] = []
    pairs: list[tuple[int, int]] = []
    for _ in range(400):
        base = story(rng)
        docs.append(base)
        i = len(docs) - 1
        for k in (1, 2, 3, 4, 20, 40, 60):  # few substitutions: Jaccard ~0.8-0.97; many: well under 0.5
            docs.append(mutate(rng, base, int(k)))
            pairs.append((i, len(docs) - 1))
    order = rng.permutation(len(docs))  # near copies anywhere in the corpus, not right after their original
    docs = [docs[j] for j in order]
    where = {int(old): new for new, old in enumerate(order)}
    pairs = [(where[a], where[b]) for a, b in pairs]
    dd = [Doc(str(i), " ".join(t)) for i, t in enumerate(docs)]
    sigs = MinHasher(cfg.num_perm, cfg.seed).signatures([shingle_hashes(d, cfg.shingle_size) for d in dd])
    args = ([None] * len(dd), sigs, np.ones(len(dd), bool), np.ones(len(dd), bool))
    res = deduplicate(*args, threshold=cfg.threshold, verify_jaccard=cfg.verify_jaccard)
    ref = datasketch_deduplicate(*args, threshold=cfg.threshold, verify_jaccard=cfg.verify_jaccard)
    np.testing.assert_array_equal(res.cluster, ref.cluster)  # the oracle finds the same clusters
    hi = [(a, b) for a, b in pairs if jaccard(docs[a], docs[b], cfg.shingle_size) >= 0.8]
    lo = [(a, b) for a, b in pairs if jaccard(docs[a], docs[b], cfg.shingle_size) < 0.5]
    # pairs of unrelated documents too
    lo += [(int(a), int(b)) for a, b in rng.integers(0, len(docs), size=(2000, 2)) if a != b and
           jaccard(docs[a], docs[b], cfg.shingle_size) < 0.5]
    assert len(hi) >= 1000 and len(lo) >= 3000
    same = lambda a, b: res.cluster[a] >= 0 and res.cluster[a] == res.cluster[b]  # noqa: E731
    found = sum(same(a, b) for a, b in hi) / len(hi)
    merged = sum(same(a, b) for a, b in lo) / len(lo)
    print(f"bands {res.bands} x rows {res.rows}: found {found:.4f} of {len(hi)} pairs >= 0.8, merged {merged:.4f} of {len(lo)} pairs < 0.5")
    assert found >= 0.99
    assert merged <= 0.01
    # every cluster has one representative, and it is a member
    for c in set(res.cluster[res.cluster >= 0]):
        reps = set(res.representative[res.cluster == c])
        assert len(reps) == 1 and res.cluster[reps.pop()] == c


def test_exact_duplicates_and_representative_prefers_a_kept_document():
    texts = ["The dog ran home.", "the DOG ran   home!", "A different story about a cat that sat.", "The dog ran home"]
    dd = [Doc(str(i), t) for i, t in enumerate(texts)]
    import hashlib

    keys = [hashlib.blake2b(" ".join(d.tokens).encode(), digest_size=16).hexdigest() for d in dd]
    sigs = MinHasher(128, 1).signatures([shingle_hashes(d, 5) for d in dd])
    passed = np.array([False, True, True, True])  # the first copy failed a filter: the second represents
    res = deduplicate(keys, sigs, np.ones(4, bool), passed)
    ref = datasketch_deduplicate(keys, sigs, np.ones(4, bool), passed)
    np.testing.assert_array_equal(res.representative, ref.representative)
    assert res.exact_dup.tolist() == [False, True, False, True]
    assert res.representative.tolist() == [1, 1, -1, 1]
