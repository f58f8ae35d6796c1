"""Minimal-pair probes: does a model give the grammatical sentence of each pair the higher probability?

A sentence's score is its full log-probability: a BOS token is prepended (our models' end-of-text
token; a Hugging Face model's BOS, else its EOS) and the log-probabilities of all its tokens are
summed. A pair is passed when the good sentence scores higher (`correct` = 1; a tie counts 0.5); the
per-token mean is a second criterion (`correct_mean`) that does not favour the shorter sentence.

Scored models: a run folder (`runs/<exp>/<curriculum>/seed<N>`, its latest checkpoint), any Hugging
Face causal-LM folder, and, for a run, the baselines trained on or built like it: the untrained
model (step 0, the run's seed and config) and unigram / bigram / 5-gram models (trainers/ngram.py)
fitted on the run's training split. Every pair is tagged with the share of its words that occur
in the training split (or a vocabulary list), so accuracy can be read on in-vocabulary pairs.

Results: one row per (scorer, pair) in `probes.parquet` beside the model; `summarize` groups them
per paradigm, linguistics term, field and overall.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F

from trainers.model import ModelConfig, Transformer, compile_unavailable
from trainers.ngram import NGramModel, words
from trainers.prepare import load_prepared
from trainers.probe_suites import ProbeError, Suite
from trainers.tokenizer import eot_id, load_tokenizer

PROBES = "probes.parquet"
NGRAM_ORDERS = (1, 2, 5)
LEVELS = (("paradigm", "paradigm"), ("linguistics_term", "term"), ("field", "field_"))


# ---- token-level language models -------------------------------------------------------------

@dataclass
class TokenLM:
    """A causal LM as the probe sees it: text -> token ids, and (ids, mask) -> logits at the masked positions."""

    name: str
    encode: Callable[[list[str]], list[list[int]]]
    bos: int
    context: int
    logits_at: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (B,T) ids, (B,T) bool -> (N, V)
    batch_size: int = 128
    device: torch.device = torch.device("cpu")
    step: int | None = None
    tokens: int | None = None
    progress: Callable[[int, int], None] | None = None  # (sequences or windows scored, in all) after every batch
    # packed prefix trees (score_trees): (B,L) ids, (B,L) positions, (B,1,L,L) bool "may attend",
    # (B,L) bool, many -> (N, V) logits at the True positions; `many` = a long series of batches of
    # this one shape follows (worth compiling); None = the model takes no such rows
    logits_tree: Callable[..., torch.Tensor] | None = None

    def score(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        return score_ids(self, [[self.bos] + ids for ids in self.encode(list(texts))])


TREE_ROW = 128  # tokens per packed prefix-tree row
COMPILE_ROWS = 2000  # from this many rows on (all of BLiMP: ~11,000) a model compiles for them


@torch.inference_mode()
def score_ids(lm: TokenLM, seqs: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Summed log-probability of tokens 1.. of each sequence given the ones before (token 0 is the BOS),
    and the number of scored tokens. A model that takes packed rows scores the sequences that fit a
    row as prefix trees (score_trees); the others, and every sequence of a model that does not, go
    one window per row (score_windows)."""
    if lm.logits_tree is None:
        return score_windows(lm, seqs)
    # in a tree row every token is an input (the model has `context` positions); the window path
    # takes context + 1 tokens, the last one only as a target
    fit = [i for i, s in enumerate(seqs) if len(s) <= min(TREE_ROW, lm.context)]
    rest = sorted(set(range(len(seqs))) - set(fit))
    sums, counts = np.zeros(len(seqs)), np.zeros(len(seqs), dtype=np.int64)
    for idx, fn in ((fit, score_trees), (rest, score_windows)):
        if idx:
            sums[idx], counts[idx] = fn(lm, [seqs[i] for i in idx])
    return sums, counts


@dataclass
class TreeRow:
    """Sequences packed into one row as a prefix tree: each distinct prefix is one token of the row.
    `parent[i]` is the row index of token i's predecessor (-1 for a first token), `pos[i]` its
    position in its sequence, and `ends[k]` the row index of the last token of sequence `members[k]`."""

    tokens: list[int]
    parent: list[int]
    pos: list[int]
    members: list[int]
    ends: list[int]


def pack_trees(seqs: Sequence[Sequence[int]], row: int = TREE_ROW) -> list[TreeRow]:
    """Sort the sequences and fill rows of at most `row` tokens, each sequence adding only the tokens
    after its longest common prefix with the one before it in the row (sorted, that prefix is the
    longest it shares with any sequence of the row)."""
    rows: list[TreeRow] = []
    cur: TreeRow | None = None
    path: list[int] = []  # row indices of the previous sequence's tokens
    prev: Sequence[int] = ()
    for k in sorted(range(len(seqs)), key=lambda i: seqs[i]):
        s = seqs[k]
        if len(s) > row:
            raise ValueError(f"a sequence of {len(s)} tokens does not fit a row of {row}")
        lcp = 0
        if cur is not None:
            n = min(len(s), len(prev))
            while lcp < n and s[lcp] == prev[lcp]:
                lcp += 1
        if cur is None or len(cur.tokens) + len(s) - lcp > row:
            cur, lcp = TreeRow([], [], [], [], []), 0
            rows.append(cur)
        path = path[:lcp]
        for d in range(lcp, len(s)):
            cur.tokens.append(s[d])
            cur.parent.append(path[-1] if path else -1)
            cur.pos.append(d)
            path.append(len(cur.tokens) - 1)
        cur.members.append(k)
        cur.ends.append(path[-1])
        prev = s
    return rows


def tree_batch(rows: Sequence[TreeRow], row: int):
    """Tensors for a batch of packed rows: ids, positions, the attention mask (a token sees itself and
    its ancestors: exactly the tokens before it in its own sequence) and the flat parent index of
    every token (-1: none, or padding)."""
    B = len(rows)
    x = np.zeros((B, row), dtype=np.int64)
    pos = np.zeros((B, row), dtype=np.int64)
    parent = np.full((B, row), -1, dtype=np.int64)
    mask = np.zeros((B, row, row), dtype=bool)
    mask[:, np.arange(row), np.arange(row)] = True  # padding sees itself: no empty softmax
    for r, tr in enumerate(rows):
        n = len(tr.tokens)
        x[r, :n], pos[r, :n] = tr.tokens, tr.pos
        p = np.asarray(tr.parent, dtype=np.int64)
        parent[r, :n] = np.where(p >= 0, r * row + p, -1)
    # a token sees what its parent sees, and itself: filled one depth at a time, parents first
    flat_mask, flat_parent, depth = mask.reshape(B * row, row), parent.reshape(-1), pos.reshape(-1)
    for d in range(1, int(depth.max(initial=0)) + 1):
        at = np.flatnonzero((depth == d) & (flat_parent >= 0))
        flat_mask[at] |= flat_mask[flat_parent[at]]
    return x, pos, mask, parent


@torch.inference_mode()
def score_trees(lm: TokenLM, seqs: Sequence[Sequence[int]], row: int = TREE_ROW) -> tuple[np.ndarray, np.ndarray]:
    """score_ids for sequences packed as prefix trees: a prefix shared by several sequences (BLiMP's
    good and bad sentence mostly differ in one word) goes through the model once, with the positions
    and attention it has in each sequence, so every score equals that of the sequence alone. Only
    the tokens that predict another one go through the output layer."""
    rows = pack_trees(seqs, row)
    per_batch = max(1, lm.batch_size * 16 // row)  # about as many tokens per batch as the window path
    many = len(rows) >= COMPILE_ROWS
    sums = np.zeros(len(seqs))
    counts = np.zeros(len(seqs), dtype=np.int64)
    done = 0
    for b in range(0, len(rows), per_batch):
        part = rows[b:b + per_batch]
        # a compiled model is compiled for one shape: the last batch is filled up with empty rows
        x, pos, mask, parent = tree_batch(part + [TreeRow([], [], [], [], [])] * (per_batch - len(part)) * many, row)
        child = np.flatnonzero(parent.reshape(-1) >= 0)  # flat indices of the tokens that are predicted
        par = parent.reshape(-1)[child]
        at = np.zeros(x.size, dtype=bool)
        at[par] = True
        slot = np.cumsum(at) - 1  # flat index -> row of the logits
        logits = lm.logits_tree(torch.from_numpy(x).to(lm.device), torch.from_numpy(pos).to(lm.device),
                                torch.from_numpy(mask[:, None]).to(lm.device),
                                torch.from_numpy(at.reshape(x.shape)).to(lm.device), many).float()
        ps = torch.from_numpy(slot[par]).to(lm.device)
        lp = (logits[ps, torch.from_numpy(x.reshape(-1)[child]).to(lm.device)] - torch.logsumexp(logits, -1)[ps])
        cum = np.zeros(x.size)  # log-probability of the path from the first token to each token
        v = np.zeros(x.size)
        v[child] = lp.double().cpu().numpy()
        flat_pos = pos.reshape(-1)
        for d in range(1, int(flat_pos.max()) + 1):
            sel = child[flat_pos[child] == d]
            cum[sel] = cum[parent.reshape(-1)[sel]] + v[sel]
        for r, tr in enumerate(part):
            for k, e in zip(tr.members, tr.ends):
                sums[k], counts[k] = cum[r * row + e], tr.pos[e]
        done += sum(len(tr.members) for tr in part)
        if lm.progress is not None:
            lm.progress(done, len(seqs))
    return sums, counts


@torch.inference_mode()
def score_windows(lm: TokenLM, seqs: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """score_ids one window per row: sequences longer than the context are scored in windows of
    `context` tokens (as the trainer's held-out loss). Windows of similar length share a batch, and
    only the real (unpadded) positions go through the softmax."""
    windows, owner = [], []
    for i, s in enumerate(seqs):
        for j in range(0, max(1, len(s) - 1), lm.context):
            w = s[j:j + lm.context + 1]
            if len(w) > 1:
                windows.append(w)
                owner.append(i)
    order = sorted(range(len(windows)), key=lambda k: len(windows[k]))
    sums = np.zeros(len(seqs))
    counts = np.zeros(len(seqs), dtype=np.int64)
    for b in range(0, len(order), lm.batch_size):
        idx = order[b:b + lm.batch_size]
        T = max(len(windows[k]) for k in idx) - 1
        x = torch.zeros((len(idx), T), dtype=torch.long)
        y = torch.zeros((len(idx), T), dtype=torch.long)
        mask = torch.zeros((len(idx), T), dtype=torch.bool)
        for r, k in enumerate(idx):
            w = torch.as_tensor(windows[k], dtype=torch.long)
            n = len(w) - 1
            x[r, :n], y[r, :n], mask[r, :n] = w[:-1], w[1:], True
        logits = lm.logits_at(x.to(lm.device), mask.to(lm.device)).float()
        tgt = y.to(lm.device)[mask.to(lm.device)]
        lp = -F.cross_entropy(logits, tgt, reduction="none")  # log-softmax at the target, fused
        per_row = torch.zeros(len(idx), dtype=torch.float64, device=lp.device)
        rows = torch.arange(len(idx), device=lm.device)[:, None].expand(-1, T)[mask.to(lm.device)]
        per_row.index_add_(0, rows, lp.double())
        per_row = per_row.cpu().numpy()
        n_row = mask.sum(1).numpy()
        for r, k in enumerate(idx):
            sums[owner[k]] += per_row[r]
            counts[owner[k]] += n_row[r]
        if lm.progress is not None:
            lm.progress(min(b + lm.batch_size, len(order)), len(order))
    return sums, counts


def model_lm(name: str, model, tok, eot: int, device, batch_size: int, step=None, tokens=None,
             compile: bool = True) -> TokenLM:
    """One of our models as a TokenLM. With `compile` (and a compiler: trainers.model.compile_unavailable)
    a long series of packed rows goes through the model compiled by torch.compile, once per process
    (inductor fuses the norms, rotary positions and SwiGLU: ~1.3x on 2 CPU cores at the 7M preset)."""
    model.eval()
    compiled: list = []

    def encode(texts):
        return [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]

    def logits_at(x, mask):  # the output layer only at real positions, as for a HF model below
        return F.linear(model.hidden(x)[mask], model.embed.weight)

    def logits_tree(x, pos, attend, at, many=False):
        hidden = model.hidden
        if many and compile:
            if not compiled:  # decided once: compiled, or the eager model where no compiler is
                compiled.append(model.hidden if compile_unavailable(x.device) else torch.compile(model.hidden, dynamic=False))
            hidden = compiled[0]
        return F.linear(hidden(x, pos, attend)[at], model.embed.weight)

    return TokenLM(name, encode, eot, model.cfg.context, logits_at, batch_size, torch.device(device), step, tokens,
                   logits_tree=logits_tree)


def load_run_lm(run: str | Path, device: str = "cpu", batch_size: int = 128, checkpoint: str | Path | None = None,
                compile: bool = True) -> TokenLM:
    """The model of a run folder at its latest checkpoint (or the given checkpoint file)."""
    run = Path(run)
    ck_path = Path(checkpoint) if checkpoint else run / "checkpoint.pt"
    if not ck_path.exists():
        raise ProbeError(f"{run}: no {ck_path.name} (train the run first)")
    ck = torch.load(ck_path, map_location=device, weights_only=False)
    model = Transformer(ModelConfig(**ck["model_config"])).to(device)
    model.load_state_dict(ck["model"])
    tok = load_tokenizer(run / "tokenizer.json")
    step = (ck.get("scheduler") or {}).get("step", ck.get("step"))
    return model_lm("model", model, tok, eot_id(tok), device, batch_size, step, ck.get("tokens"), compile)


def untrained_run_lm(run: str | Path, device: str = "cpu", batch_size: int = 128, compile: bool = True) -> TokenLM:
    """The run's model at step 0: its config, initialised with its seed exactly as the trainer does."""
    run = Path(run)
    cfg = json.loads((run / "config.json").read_text())
    mcfg = cfg.get("model") or torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)["model_config"]
    torch.manual_seed(int(cfg["seed"]))
    model = Transformer(ModelConfig(**mcfg)).to(device)
    tok = load_tokenizer(run / "tokenizer.json")
    return model_lm("untrained", model, tok, eot_id(tok), device, batch_size, 0, 0, compile)


def load_hf_lm(folder: str | Path, device: str = "cpu", batch_size: int = 32, name: str = "model") -> TokenLM:
    """Any Hugging Face causal LM saved in a folder (config.json + weights + tokenizer), offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    folder = Path(folder)
    try:
        tok = AutoTokenizer.from_pretrained(str(folder))
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).to(device)
    except (OSError, ValueError) as e:
        raise ProbeError(f"{folder}: not a loadable Hugging Face causal LM ({str(e).splitlines()[0]})") from None
    model.eval()
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    if bos is None:
        raise ProbeError(f"{folder}: the tokenizer has neither a BOS nor an EOS token to start a sentence with")
    cfg = model.config
    head = model.get_output_embeddings()
    base = getattr(model, model.base_model_prefix, None)
    # models that post-process their logits (soft-capping, scaling) go through the full forward
    plain = head is not None and base is not None and base is not model and not any(
        getattr(cfg, k, None) for k in ("final_logit_softcapping", "logit_scale", "logits_scaling"))

    def encode(texts):
        return tok(texts, add_special_tokens=False)["input_ids"]

    def logits_at(x, mask):
        if plain:  # the output layer only at real positions: padding never reaches the (large) vocabulary matmul
            h = base(input_ids=x, attention_mask=mask.long()).last_hidden_state
            return head(h[mask])
        return model(input_ids=x, attention_mask=mask.long()).logits[mask]

    ctx = int(getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None) or 1024)
    return TokenLM(name, encode, int(bos), ctx, logits_at, batch_size, torch.device(device))


def is_run_folder(path: Path) -> bool:
    return (path / "checkpoint.pt").exists() and (path / "tokenizer.json").exists()


# ---- the training split and its vocabulary ----------------------------------------------------

def training_texts(run: str | Path) -> list[str] | None:
    """The texts of the run's training split, decoded from the experiment's prepared token ids
    (`<exp>/prepared.json`, two folders up); None when that folder is not there."""
    run = Path(run)
    exp_dir = run.parent.parent
    if not (exp_dir / "prepared.json").exists():
        return None
    prep = load_prepared(exp_dir)
    try:
        cur = json.loads((run / "config.json").read_text()).get("curriculum", {})
    except (OSError, ValueError):
        cur = {}
    used = {"main"} | {n for st in cur.get("mixture") or [] for n in st.get("weights", {})}
    tok = load_tokenizer(prep.tokenizer_path)
    texts = []
    for name, src in prep.sources.items():
        if name in used:
            texts += tok.decode_batch([src.docs[i].tolist() for i in src.train_index()], skip_special_tokens=False)
    return texts


def vocabulary(texts: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for t in texts:
        out.update(words(t))
    return out


def read_vocab_list(path: str | Path) -> set[str]:
    """A word list: one word per line, or a TSV whose first column is the word (a header line is skipped)."""
    p = Path(path)
    if not p.is_file():
        raise ProbeError(f"{p}: vocabulary list not found")
    out = set()
    for i, line in enumerate(p.read_text(encoding="utf-8").splitlines()):
        w = line.split("\t")[0].strip().lower()
        if w and not (i == 0 and w in ("word", "lemma")):
            out.update(words(w))
    return out


def vocab_share(suite: Suite, vocab: set[str] | None) -> np.ndarray:
    """Share of the distinct words (not punctuation) of each pair, good and bad sentence together, in the vocabulary."""
    if vocab is None:
        return np.full(len(suite), np.nan)
    out = np.empty(len(suite))
    for i, (g, b) in enumerate(zip(suite.good, suite.bad)):
        ws = {w for w in words(g) + words(b) if w[0].isalnum() or w[0] == "_"}
        out[i] = sum(w in vocab for w in ws) / len(ws) if ws else 1.0
    return out


# ---- scoring a suite ---------------------------------------------------------------------------

def score_suite(suite: Suite, score: Callable[[Sequence[str]], tuple[np.ndarray, np.ndarray]]):
    """(logp good, logp bad, tokens good, tokens bad); every distinct sentence is scored once."""
    uniq = list(dict.fromkeys(suite.good + suite.bad))
    pos = {s: i for i, s in enumerate(uniq)}
    lp, n = score(uniq)
    g = np.fromiter((pos[s] for s in suite.good), dtype=np.int64, count=len(suite))
    b = np.fromiter((pos[s] for s in suite.bad), dtype=np.int64, count=len(suite))
    return lp[g], lp[b], n[g], n[b]


def pair_table(suite: Suite, scorer: str, scores, share: np.ndarray, step: int | None = None,
               tokens: int | None = None) -> pa.Table:
    lg, lb, ng, nb = scores
    with np.errstate(invalid="ignore", divide="ignore"):
        mg, mb = lg / np.maximum(ng, 1), lb / np.maximum(nb, 1)
    n = len(suite)
    return pa.table({
        "suite": [suite.name] * n, "scorer": [scorer] * n,
        "step": pa.array([step] * n, pa.int64()), "tokens": pa.array([tokens] * n, pa.int64()),
        "pair_id": suite.pair_id, "paradigm": suite.paradigm, "linguistics_term": suite.term, "field": suite.field_,
        "vocab_share": pa.array(share, pa.float64(), from_pandas=True),
        "logp_good": lg, "logp_bad": lb, "tokens_good": np.asarray(ng, np.int64), "tokens_bad": np.asarray(nb, np.int64),
        "correct": _credit(lg, lb), "correct_mean": _credit(mg, mb)})


def _credit(good: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """1 when the good sentence scores higher, 0 when lower, 0.5 on a tie (an n-gram model that has
    seen neither differing word cannot choose: that is chance, not an error)."""
    return np.where(good > bad, 1.0, np.where(good == bad, 0.5, 0.0))


def ngram_models(texts: Sequence[str], orders: Sequence[int] = NGRAM_ORDERS) -> list[NGramModel]:
    return [NGramModel(o).fit(texts) for o in orders]


def probe(suite: Suite, lm: TokenLM | None = None, *, untrained: TokenLM | None = None,
          ngrams: Sequence[NGramModel] = (), vocab: set[str] | None = None,
          log: Callable[[str], None] = lambda s: None) -> pa.Table:
    """Score every pair with the model and each baseline; one row per (scorer, pair)."""
    share = vocab_share(suite, vocab)
    parts = []
    for m in [x for x in (lm, untrained) if x is not None]:
        log(f"{m.name}: scoring {len(suite):,} pairs")
        parts.append(pair_table(suite, m.name, score_suite(suite, m.score), share, m.step, m.tokens))
    for ng in ngrams:
        log(f"{ng.name}: scoring {len(suite):,} pairs")
        parts.append(pair_table(suite, ng.name, score_suite(suite, ng.score), share))
    return pa.concat_tables(parts)


def write_probes(table: pa.Table, path: str | Path) -> Path:
    """Add the rows to probes.parquet, replacing earlier rows of the same (suite, scorer, step)."""
    path = Path(path)
    if path.exists():
        old = pq.read_table(path)
        keys = {(r["suite"], r["scorer"], r["step"]) for r in table.select(["suite", "scorer", "step"]).to_pylist()}
        old_keys = old.select(["suite", "scorer", "step"]).to_pylist()
        keep = pa.array([(r["suite"], r["scorer"], r["step"]) not in keys for r in old_keys])
        old = old.filter(keep)
        if old.num_rows and old.schema.equals(table.schema):
            table = pa.concat_tables([old, table])
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
    return path


# ---- summaries --------------------------------------------------------------------------------

IN_VOCAB = 1.0  # a pair is in-vocabulary when every one of its words is


def _pct(x: np.ndarray) -> float:
    return float(100.0 * x.mean()) if len(x) else math.nan


def summarize(table: pa.Table) -> list[dict]:
    """Accuracy per (scorer, step) at every level: paradigm, linguistics_term, field, and `overall`
    (the mean over paradigms, BLiMP's headline number). The in-vocabulary accuracy of a group is
    pooled over its in-vocabulary pairs."""
    out = []
    d = table.to_pydict()
    scorer = np.array(d["scorer"], dtype=object)
    step = np.array([-1 if s is None else s for s in d["step"]])
    correct, correct_mean = np.array(d["correct"]), np.array(d["correct_mean"])
    share = np.array([np.nan if v is None else v for v in d["vocab_share"]], dtype=float)
    inv = share >= IN_VOCAB
    has_vocab = not np.isnan(share).all()
    groups = {lvl: np.array(d[col], dtype=object) for lvl, col in
              (("paradigm", "paradigm"), ("linguistics_term", "linguistics_term"), ("field", "field"))}
    for sc in dict.fromkeys(d["scorer"]):
        for st in sorted(set(step[scorer == sc].tolist())):
            base = (scorer == sc) & (step == st)
            tokens = next((t for t, m in zip(d["tokens"], base) if m), None)
            common = {"scorer": sc, "step": None if st < 0 else int(st), "tokens": tokens}
            para_acc = []
            for lvl, g in groups.items():
                for name in dict.fromkeys(g[base].tolist()):
                    if not name:
                        continue
                    sel = base & (g == name)
                    row = {**common, "level": lvl, "group": name, "pairs": int(sel.sum()), "accuracy": _pct(correct[sel]),
                           "accuracy_mean": _pct(correct_mean[sel]), "in_vocab_pairs": int((sel & inv).sum()) if has_vocab else None,
                           "accuracy_in_vocab": _pct(correct[sel & inv]) if has_vocab else math.nan}
                    out.append(row)
                    if lvl == "paradigm":
                        para_acc.append((row["accuracy"], row["accuracy_mean"]))
            out.append({**common, "level": "overall", "group": "mean", "pairs": int(base.sum()),
                        "accuracy": float(np.mean([a for a, _ in para_acc])) if para_acc else _pct(correct[base]),
                        "accuracy_mean": float(np.mean([m for _, m in para_acc])) if para_acc else _pct(correct_mean[base]),
                        "in_vocab_pairs": int((base & inv).sum()) if has_vocab else None,
                        "accuracy_in_vocab": _pct(correct[base & inv]) if has_vocab else math.nan})
    return out


def published_rows(suite: Suite) -> list[dict]:
    """The paper's accuracies for the suite's paradigms, with term, field and overall means over them."""
    rows = []
    if not suite.published:
        return rows
    term = dict(zip(suite.paradigm, suite.term))
    fld = dict(zip(suite.paradigm, suite.field_))
    for label, acc in suite.published.items():
        paras = [p for p in suite.paradigms() if p in acc]
        if not paras:
            continue
        for p in paras:
            rows.append({"scorer": label, "level": "paradigm", "group": p, "accuracy": acc[p]})
        for lvl, m in (("linguistics_term", term), ("field", fld)):
            for g in dict.fromkeys(m[p] for p in paras):
                rows.append({"scorer": label, "level": lvl, "group": g,
                             "accuracy": float(np.mean([acc[p] for p in paras if m[p] == g]))})
        rows.append({"scorer": label, "level": "overall", "group": "mean", "accuracy": float(np.mean([acc[p] for p in paras]))})
    return rows


def final_rows(table: pa.Table, scorer: str = "model") -> pa.Table:
    """The rows of one scorer at its last probed step."""
    t = table.filter(pc.equal(table["scorer"], scorer))
    if not t.num_rows:
        return t
    steps = [s for s in t["step"].to_pylist() if s is not None]
    if steps:
        t = t.filter(pc.equal(t["step"], max(steps)))
    return t
