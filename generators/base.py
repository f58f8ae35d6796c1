"""The backend interface: a batch of requests in, a batch of completions (or per-item errors) out."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Protocol, Sequence


def _sampling_key(s: Sampling) -> dict[str, Any]:
    """The sampling settings of a cache key; `min_tokens` only when set, so that the keys of requests
    made before it existed stay as they were."""
    d = asdict(s)
    if not d["min_tokens"]:
        del d["min_tokens"]
    return d


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.8
    top_p: float = 0.95
    max_tokens: int = 300
    seed: int = 0
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = ()
    min_tokens: int = 0  # no end of text before this many tokens (local, vllm; openai sends `min_tokens`)

    def as_record(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "repetition_penalty": self.repetition_penalty,
        }


@dataclass(frozen=True)
class Request:
    """One generation request. `prefill` starts the assistant's answer (the text continues it)."""

    id: str
    messages: tuple[dict[str, str], ...]
    sampling: Sampling
    prefill: str = ""
    # JSON schema the answer must match (structured output); None for free text
    json_schema: dict[str, Any] | None = None
    # constraint-aware decoding (generators.constrain.Constraint); None: the plain sampler
    constraint: Any = None

    def user_prompt(self) -> str:
        return "\n\n".join(m["content"] for m in self.messages if m["role"] == "user")

    def cache_key(self, backend: str, model: str, api: str = "chat") -> str:
        """Hash of everything that determines the output, and nothing else (not the id)."""
        payload = {
            "backend": backend,
            "model": model,
            "api": api,
            "messages": list(self.messages),
            "prefill": self.prefill,
            "sampling": _sampling_key(self.sampling),
            "json_schema": self.json_schema,
        }
        if self.constraint is not None:  # only then: keys of unconstrained requests stay as they were
            payload["constraint"] = self.constraint.as_key()
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class Completion:
    id: str
    text: str = ""
    finish_reason: str = "stop"  # stop | length | error | content_filter
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    created_at: float = 0.0  # unix seconds
    error: str | None = None
    error_kind: str | None = None  # timeout | rate_limit | server | connection | invalid | empty | refusal | ...
    retries: int = 0
    cached: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_json(cls, s: str) -> "Completion":
        return cls(**json.loads(s))


OnResult = Callable[["Completion"], None]


class Backend(Protocol):
    """Every backend: `generate` never raises for a single bad item; it returns an error Completion.
    `on_result(completion)`, when given, is called once per request as soon as its answer is final
    (the runner caches answers as they arrive); `progress(n)` counts finished requests."""

    name: str
    model: str
    api: str

    def generate(self, requests: Sequence[Request], progress: Any = None,
                 on_result: OnResult | None = None) -> list[Completion]: ...

    def close(self) -> None: ...


class BackendError(Exception):
    """A backend cannot run at all (missing package, no GPU, model file not found)."""
