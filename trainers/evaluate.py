"""Per-document loss: the held-out validation (overall and by difficulty bucket) and the
model-based difficulty score both come from here."""
from __future__ import annotations

import contextlib
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def autocast_for(device: torch.device, dtype: str):
    if dtype == "bfloat16":
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
