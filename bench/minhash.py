"""Issue 4: MinHash signatures per second, ours (ASCII text tokenized and tokens hashed in numpy a
few MB at a time, shingles and permutations in numpy, many documents per call) beside datasketch's
`MinHash.update_batch` on the same 200-word stories, the same num_perm and seed, and the same
shingle hash function (so that the signatures can be, and are, checked equal). Both sides start
from the text. Target: at least 8x.

datasketch is also timed with its default hash (sha1 of each shingle, in C), which is faster than
our shingle hash written in Python; its signatures differ from ours only because the hash function
differs. The JSON line carries that ratio too (`ratio_vs_default_hash`), so the target can be read
against the faster of the two references.

    python bench/minhash.py [--docs 3000] [--num-perm 128] [--seed 1] [--shingle 5]
"""
from __future__ import annotations

import argparse
import json
import random
import time

import numpy as np
from datasketch import MinHash

import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, also without an install

from filters.minhash import mix64_to32_py, shingles, signatures_for_texts
from filters.text import NGRAM_BASE, WORD_RE, token_hash

STOP = ["the", "a", "and", "was", "she", "he", "they", "to", "with", "her", "his", "then", "said", "in", "on"]


def stories(n: int, words: int = 200, seed: int = 0) -> list[str]:
    import prompts

    vocab = [line.split("\t")[0] for line in (prompts.ROOT / "vocab" / "default.tsv").read_text().splitlines()[1:]]
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        toks, sent = [], []
        while len(toks) < words:
            w = rng.choice(STOP) if rng.random() < 0.45 else rng.choice(vocab)
            toks.append(w)
            sent.append(w)
            if len(sent) >= rng.randint(6, 14):
                toks[-1] += "."
                sent = []
        out.append(" ".join(toks).capitalize())
    return out


def make_reference_hashfunc():
    """The same shingle hash in plain Python, as a datasketch user would write it: split the shingle,
    hash each token (cached: as cheap as Python gets), combine and mix."""
    cache: dict[str, int] = {}
    base, m = int(NGRAM_BASE), (1 << 64) - 1

    def h(shingle: bytes) -> int:
        acc = 0
        for t in shingle.decode("utf-8").split(" "):
            th = cache.get(t)
            if th is None:
                th = cache[t] = token_hash(t)
            acc = (acc * base + th) & m
        return mix64_to32_py(acc)

    return h


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=3000)
    ap.add_argument("--num-perm", type=int, default=128)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--shingle", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3, help="best of N (CPU seconds: the machine is shared)")
    args = ap.parse_args()
    texts = stories(args.docs)
    n = args.shingle

    def ours():
        return signatures_for_texts(texts, n, args.num_perm, args.seed)

    hashfunc = make_reference_hashfunc()

    def reference(fn=hashfunc):
        out = np.empty((len(texts), args.num_perm), dtype=np.uint32)
        for i, t in enumerate(texts):
            m = MinHash(num_perm=args.num_perm, seed=args.seed, hashfunc=fn) if fn else MinHash(num_perm=args.num_perm, seed=args.seed)
            m.update_batch(shingles(WORD_RE.findall(t.lower()), n))
            out[i] = m.hashvalues
        return out

    def best(fn):
        times, result = [], None
        for _ in range(args.repeat):
            t0 = time.process_time()
            result = fn()
            times.append(time.process_time() - t0)
        return min(times), result

    ours()  # warm the token cache and the permutations, as in a running stage
    reference()
    t_ours, sig_ours = best(ours)
    t_ref, sig_ref = best(reference)
    t_sha1, _ = best(lambda: reference(None))
    assert np.array_equal(sig_ours, sig_ref), "our signatures differ from datasketch's"
    ours_dps, ref_dps, sha1_dps = args.docs / t_ours, args.docs / t_ref, args.docs / t_sha1
    print(f"{args.docs} stories of 200 words, {n}-word shingles, num_perm={args.num_perm}, seed={args.seed} (CPU seconds, best of {args.repeat})")
    print(f"  ours (numpy, batched)                       {ours_dps:10.0f} docs/s")
    print(f"  datasketch update_batch, same hash function {ref_dps:10.0f} docs/s   signatures equal: yes")
    print(f"  datasketch update_batch, default sha1 hash  {sha1_dps:10.0f} docs/s   (context only; other hash, other signatures)")
    print(json.dumps({"metric": "minhash_docs_per_s", "ours": round(ours_dps), "reference": round(ref_dps),
                      "ratio": round(ours_dps / ref_dps, 1), "target": 8,
                      "reference_default_hash": round(sha1_dps), "ratio_vs_default_hash": round(ours_dps / sha1_dps, 1)}))


if __name__ == "__main__":
    main()
