"""Backends by name. Each entry is imported only when chosen (vLLM must never load unless asked)."""
from __future__ import annotations

import importlib
from typing import Any

from generators.base import Backend, BackendError

BACKENDS: dict[str, str] = {
    "local": "generators.local:LocalBackend",
    "openai": "generators.openai_backend:OpenAIBackend",
    "vllm": "generators.vllm_backend:VLLMBackend",
}

# the backends that run the constrained decoder's logits processor at every step (generators/constrain.py);
# a remote server cannot run code per step
STEP_BIASES = ("local", "vllm")


def make_backend(name: str, **options: Any) -> Backend:
    try:
        target = BACKENDS[name]
    except KeyError:
        raise BackendError(f"unknown backend {name!r} (known: {', '.join(sorted(BACKENDS))})") from None
    module, _, cls = target.partition(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise BackendError(f"backend {name!r} needs a package that is not installed: {e}") from None
    return getattr(mod, cls)(**options)
