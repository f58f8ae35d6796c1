"""The `vllm` backend: offline batch generation in this process on a CUDA GPU (`vllm.LLM`).

vLLM is imported only when this backend is chosen; without vLLM or without a CUDA GPU the backend
stops with a BackendError that says which. A batch goes to vLLM in one call (vLLM schedules it with
continuous batching); every item carries its own `SamplingParams(seed=...)`, so an item's text does
not depend on what else is in the batch. With `api = "chat"` the model's chat template is applied
(`LLM.chat`), and a prefill is sent as a final assistant message that the model continues
(`continue_final_message`), so the stored text is prefill + continuation as with the local
backend. With `api = "completions"` the chat is rendered as one plain-text prompt (`LLM.generate`).
A template's JSON schema turns on guided decoding; answers are still validated.
"""
from __future__ import annotations

import time
from typing import Any, Sequence

from generators import structured
from generators.base import BackendError, Completion, OnResult, Request
from generators.config import DECODING_BIASES
from generators.constrain import VLLMLogitsProcessor
from generators.openai_backend import render_plain

INSTALL_HINT = "pip install 'tinyschool[vllm]' on a machine with a CUDA GPU"


def _import_vllm():
    try:
        import vllm  # noqa: F401
    except ImportError as e:
        raise BackendError(f"backend 'vllm' needs the vllm package, which is not installed ({e}): {INSTALL_HINT}; "
                           "or serve the model with `vllm serve` and use backend 'openai'") from None
    return vllm


def _require_gpu() -> None:
    try:
        import torch
    except ImportError:
        raise BackendError("backend 'vllm' needs torch with CUDA") from None
    if not torch.cuda.is_available():
        raise BackendError("backend 'vllm' needs a CUDA GPU and none is visible (torch.cuda.is_available() is False); "
                           "use backend 'local' on a CPU, or 'openai' against a GPU server")


def _guided(schema: dict[str, Any]) -> dict[str, Any]:
    """SamplingParams keywords for JSON-guided decoding, across vLLM versions."""
    try:
        from vllm.sampling_params import StructuredOutputsParams  # vLLM >= 0.10.2

        return {"structured_outputs": StructuredOutputsParams(json=schema)}
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams  # older vLLM

        return {"guided_decoding": GuidedDecodingParams(json=schema)}


class VLLMBackend:
    name = "vllm"

    def __init__(self, model: str, api: str = "chat", tensor_parallel_size: int = 1,
                 gpu_memory_utilization: float = 0.85, max_model_len: int | None = None, dtype: str = "auto",
                 **_: Any):
        _import_vllm()
        _require_gpu()
        if api not in ("chat", "completions"):
            raise BackendError(f"backend vllm: api must be 'chat' or 'completions' (got {api!r})")
        self.model, self.api = model, api
        self._llm_args = {"model": model, "tensor_parallel_size": int(tensor_parallel_size),
                          "gpu_memory_utilization": float(gpu_memory_utilization), "dtype": dtype}
        if max_model_len:
            self._llm_args["max_model_len"] = int(max_model_len)
        self._llm = None
        self.batch_size = 256  # the runner hands over this many items at a time; vLLM batches inside

    def _ensure(self):
        if self._llm is None:
            from vllm import LLM

            try:
                self._llm = LLM(**self._llm_args)
            except Exception as e:  # noqa: BLE001 (model not found, out of memory...: the run cannot go on)
                raise BackendError(f"backend vllm: cannot load {self.model!r}: {type(e).__name__}: {e}") from None
        return self._llm

    def _params(self, r: Request):
        from vllm import SamplingParams

        s = r.sampling
        kw: dict[str, Any] = {"temperature": s.temperature, "top_p": s.top_p, "max_tokens": s.max_tokens,
                              "seed": s.seed, "repetition_penalty": s.repetition_penalty}
        if s.min_tokens:
            kw["min_tokens"] = s.min_tokens
        if s.stop:
            kw["stop"] = list(s.stop)
        if r.json_schema is not None:
            kw.update(_guided(r.json_schema))
        if r.constraint is not None:  # vocab_bias, required_bias, sentence_bias, echo_bias (generators/constrain.py)
            if "logits_processors" not in getattr(SamplingParams, "__struct_fields__", ()) and \
                    "logits_processors" not in getattr(SamplingParams, "__annotations__", {}):
                raise BackendError("backend vllm: this vLLM version has no per-request logits processors; "
                                   f"set [sampling] {', '.join(DECODING_BIASES)} to 0")
            tok = self._ensure().get_tokenizer()
            kw["logits_processors"] = [VLLMLogitsProcessor(r.constraint, tok, s.max_tokens, r.prefill or "")]
        return SamplingParams(**kw)

    def generate(self, requests: Sequence[Request], progress: Any = None, on_result: OnResult | None = None) -> list[Completion]:
        if not requests:
            return []
        llm = self._ensure()
        t0 = time.monotonic()
        outputs: dict[str, Any] = {}
        errors: dict[str, str] = {}
        if self.api == "completions":
            groups = [(list(requests), None)]
            run = lambda rs, _: llm.generate([render_plain(r.messages, r.prefill) for r in rs],  # noqa: E731
                                             [self._params(r) for r in rs], use_tqdm=False)
        else:
            # continue_final_message is one flag per call: items with and without a prefill go separately
            with_prefill = [r for r in requests if r.prefill]
            without = [r for r in requests if not r.prefill]
            groups = [(g, bool(p)) for g, p in ((without, False), (with_prefill, True)) if g]

            def run(rs, prefill):
                convs = [list(r.messages) + ([{"role": "assistant", "content": r.prefill}] if prefill else [])
                         for r in rs]
                return llm.chat(convs, [self._params(r) for r in rs], use_tqdm=False,
                                add_generation_prompt=not prefill, continue_final_message=prefill)
        for rs, flag in groups:
            try:
                for r, o in zip(rs, run(rs, flag)):
                    outputs[r.id] = o
            except Exception as e:  # noqa: BLE001 (a bad batch: every item in it is a failed row, nothing dropped)
                for r in rs:
                    errors[r.id] = f"{type(e).__name__}: {e}"
        elapsed = time.monotonic() - t0
        out = []
        now = time.time()
        for r in requests:
            if r.id in errors:
                out.append(Completion(id=r.id, finish_reason="error", error=errors[r.id], error_kind="error",
                                      latency_s=elapsed, created_at=now))
                continue
            o = outputs[r.id]
            gen = o.outputs[0]
            body = gen.text
            c = Completion(id=r.id, text=r.prefill + body, finish_reason=gen.finish_reason or "stop",
                           prompt_tokens=len(o.prompt_token_ids or []), completion_tokens=len(gen.token_ids or []),
                           latency_s=elapsed, created_at=now)
            if not body.strip():
                c.error, c.error_kind, c.finish_reason = "empty answer", "empty", "error"
            out.append(structured.check(r, c))
        if on_result is not None:  # vLLM answers the whole batch at once
            for c in out:
                on_result(c)
        if progress is not None:
            progress(len(requests))
        return out

    def close(self) -> None:
        self._llm = None
