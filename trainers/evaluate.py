"""Per-document loss: the held-out validation (overall and by difficulty bucket) and the
model-based difficulty score both come from here; and bits per byte, which unlike the loss per
token can be compared across tokenizers."""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def autocast_for(device: torch.device, dtype: str):
    """bf16 autocast when asked for, or by default ("auto") on a GPU that supports it; else fp32."""
    device = torch.device(device)
    if dtype == "bfloat16" or (dtype == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported()):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def doc_losses(model, docs: Sequence[np.ndarray], eot: int, context: int, batch_size: int = 32,
               device: torch.device | str = "cpu", dtype: str = "float32") -> tuple[np.ndarray, np.ndarray]:
    """Summed next-token loss and token count per document (each document framed by end-of-text
    tokens, split into windows of `context`)."""
    device = torch.device(device)
    windows, owner = [], []
    for i, d in enumerate(docs):
        s = np.concatenate([[eot], np.asarray(d, dtype=np.int64), [eot]])
        for j in range(0, len(s) - 1, context):
            windows.append(s[j:j + context + 1])
            owner.append(i)
    by_len = sorted(range(len(windows)), key=lambda k: len(windows[k]))  # similar lengths share a batch: less padding
    windows, owner = [windows[k] for k in by_len], [owner[k] for k in by_len]
    sums = np.zeros(len(docs))
    counts = np.zeros(len(docs))
    was_training = model.training
    model.eval()
    try:
        for b in range(0, len(windows), batch_size):
            chunk = windows[b:b + batch_size]
            T = max(len(w) for w in chunk) - 1
            x = torch.zeros((len(chunk), T), dtype=torch.long)
            y = torch.full((len(chunk), T), -1, dtype=torch.long)
            for r, w in enumerate(chunk):
                x[r, :len(w) - 1] = torch.from_numpy(w[:-1])
                y[r, :len(w) - 1] = torch.from_numpy(w[1:])
            x, y = x.to(device), y.to(device)
            with autocast_for(device, dtype):
                logits = model(x)
            tok = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.view(-1), ignore_index=-1,
                                  reduction="none").view(y.shape)
            per_win = tok.sum(1).double().cpu().numpy()
            n = (y >= 0).sum(1).cpu().numpy()
            for r in range(len(chunk)):
                sums[owner[b + r]] += per_win[r]
                counts[owner[b + r]] += n[r]
    finally:
        model.train(was_training)
    return sums, counts


def mean_doc_loss(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    return sums / np.maximum(counts, 1)


def token_bytes(tok) -> np.ndarray:
    """UTF-8 bytes each token id stands for, 0 for special tokens such as end-of-text. The
    byte-level BPE writes every byte as one character of its 256-character alphabet, so a token's
    byte count is the length of its string."""
    special = {t.content for t in tok.get_added_tokens_decoder().values() if t.special}
    out = np.zeros(tok.get_vocab_size(), dtype=np.int64)
    for s, i in tok.get_vocab(with_added_tokens=True).items():
        out[i] = 0 if s in special else len(s)
    return out


def bits_per_byte(nll_nats: float, n_bytes: int) -> float:
    """Summed next-token loss (nats) over the UTF-8 bytes of the text those tokens cover, in bits."""
    return float(nll_nats) / math.log(2) / max(1, int(n_bytes))


@dataclass
class HeldOut:
    """The held-out documents scored at every evaluation: the main corpus's (with their difficulty
    buckets) and those of each corpus mixed in, as token ids."""

    sets: dict[str, list[np.ndarray]]  # source name -> documents; "main" first
    bucket: np.ndarray  # difficulty bucket of each main document
    bucket_names: list[str]
    token_bytes: np.ndarray  # from token_bytes(tokenizer)
    eot: int

    def metrics(self, model, context: int, batch_size: int, device, dtype: str) -> dict[str, float]:
        """val_loss (mean nats per token) and val_bpb (bits per UTF-8 byte; the end-of-text token
        each document ends with is predicted too and counts in the loss, with 0 bytes), overall,
        by difficulty bucket (loss), and per mixed-in corpus (`val_loss/<name>`, `val_bpb/<name>`)."""
        out = {}
        for name, docs in self.sets.items():
            sums, counts = doc_losses(model, docs, self.eot, context, batch_size, device, dtype)
            n_bytes = sum(int(self.token_bytes[d].sum()) for d in docs)
            sfx = "" if name == "main" else f"/{name}"
            out[f"val_loss{sfx}"] = float(sums.sum() / max(1, counts.sum()))
            out[f"val_bpb{sfx}"] = bits_per_byte(sums.sum(), n_bytes)
            if name == "main" and len(self.bucket_names) > 1:
                for b, bname in enumerate(self.bucket_names):
                    sel = self.bucket == b
                    if sel.any():
                        out[f"val_loss/{bname}"] = float(sums[sel].sum() / max(1, counts[sel].sum()))
        return out
