"""Sampling from a trained run: the function the LLM-judge evaluation builds on.

    from trainers.sample import load_run, sample_run
    completions = sample_run("runs/demo/easy-to-hard/seed1", ["Once upon a time"], seed=0, temperature=0.8)
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch

from trainers.model import ModelConfig, Transformer
from trainers.tokenizer import eot_id, load_tokenizer


def sample_texts(model: Transformer, tok, prompts: Sequence[str], max_tokens: int = 80, temperature: float = 0.8,
                 top_k: int | None = 50, seed: int = 0, device: torch.device | str = "cpu") -> list[str]:
    """One completion per prompt; each prompt has its own generator seeded with (seed, prompt index),
    so a completion does not depend on the other prompts."""
    eot = eot_id(tok)
    out = []
    for i, p in enumerate(prompts):
        ids = tok.encode(p, add_special_tokens=False).ids
        idx = torch.tensor([[eot] + ids], dtype=torch.long, device=device)
        g = torch.Generator(device=device).manual_seed(seed * 1_000_003 + i)
        res = model.generate(idx, max_tokens, temperature=temperature, top_k=top_k, generator=g, stop_token=eot)
        new = [t for t in res[0, idx.shape[1]:].tolist()]
        if eot in new:
            new = new[:new.index(eot)]
        out.append(tok.decode(new))
    return out


def load_run(run: str | Path, device: str | torch.device = "cpu"):
    """(model, tokenizer) of a run's latest checkpoint (the final one when the run finished)."""
    run = Path(run)
    ck_path = run / "checkpoint.pt"
    if not ck_path.exists():
        raise FileNotFoundError(f"{run}: no checkpoint.pt (train the run first)")
    ck = torch.load(ck_path, map_location=device, weights_only=False)
    model = Transformer(ModelConfig(**ck["model_config"])).to(device)
    model.load_state_dict(ck["model"])
    model.eval()
    return model, load_tokenizer(run / "tokenizer.json")


def sample_run(run: str | Path, prompts: Sequence[str], seed: int = 0, temperature: float = 0.8, max_tokens: int = 80,
               top_k: int | None = 50, device: str = "cpu") -> list[str]:
    model, tok = load_run(run, device)
    return sample_texts(model, tok, prompts, max_tokens=max_tokens, temperature=temperature, top_k=top_k, seed=seed,
                        device=device)


def run_info(run: str | Path) -> dict:
    return json.loads((Path(run) / "config.json").read_text())
