"""Configuration of the generation stage (the `[generate]`-level keys of a recipe)."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


# the [sampling] knobs that bias the decoder at every step (generators/constrain.py; local and vllm backends)
DECODING_BIASES = ("vocab_bias", "required_bias", "sentence_bias", "echo_bias")


class SamplingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    temperature: float = Field(0.8, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: int = Field(300, gt=0)
    repetition_penalty: float = Field(1.1, gt=0)
    min_tokens: int = Field(0, ge=0, description="no end of text before this many output tokens (local and vllm; openai-compatible servers that accept `min_tokens`, e.g. vLLM's)")
    stop: list[str] = Field(default_factory=list)
    # constraint-aware decoding (generators/constrain.py; local and vllm backends); 0 = off
    vocab_bias: float = Field(0.0, ge=0, description="logit penalty for tokens that start or continue a word outside the vocabulary's closure")
    required_bias: float = Field(0.0, ge=0, description="logit boost for the prompt's required words until they appear")
    sentence_bias: float = Field(0.0, ge=0, description="logit boost for sentence-ending punctuation once a sentence has sentence_words words")
    sentence_words: int = Field(10, ge=1, description="the sentence length after which sentence_bias applies (doubling at twice it)")
    echo_bias: float = Field(0.0, ge=0, description="logit penalty for the last word of a phrase addressed to the writer (\"End the story\", \"Write your own story\")")

    def biases_on(self) -> list[str]:
        """The decoding biases this sampling sets (not 0)."""
        return [k for k in DECODING_BIASES if getattr(self, k)]


class BackendConfig(BaseModel):
    """Backend settings. `name` picks the backend; the other keys are that backend's options."""

    model_config = ConfigDict(extra="forbid")
    name: str = "local"
    model: str = "SmolLM2-135M-Instruct"
    # local
    model_path: str | None = None
    batch_size: int = Field(16, gt=0)
    threads: int | None = None
    # openai-compatible
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    api: str = Field("chat", pattern="^(chat|completions)$")
    concurrency: int = Field(32, gt=0)
    rpm: float | None = Field(None, gt=0)
    tpm: float | None = Field(None, gt=0)
    max_retries: int = Field(6, ge=0)
    retry_budget: int | None = Field(None, ge=0)  # retries for the whole run, all requests together
    timeout_s: float = Field(60.0, gt=0)
    backoff_s: float = Field(1.0, ge=0)  # first retry waits about this long, doubling each time
    backoff_max_s: float = Field(60.0, ge=0)
    max_retry_after_s: float = Field(600.0, ge=0)  # a 429 asking for a longer wait fails the item instead
    json_mode: str = Field("response_format", pattern="^(response_format|guided_json|none)$")
    extra_body: dict = Field(default_factory=dict)  # server-specific request fields (top_k, min_p, ...)
    # vllm
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.85
    max_model_len: int | None = None
    dtype: str = "auto"
    # cost (optional): dollars per million tokens
    price_input_per_m: float | None = None
    price_output_per_m: float | None = None

    def options(self) -> dict:
        return self.model_dump(exclude={"name", "price_input_per_m", "price_output_per_m"})


class GenerationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    template: str = "tinystories"
    vocabulary: str | None = "default"
    count: int = Field(64, gt=0)
    seed: int = 0
    shard_size: int = Field(64, gt=0)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    backend: BackendConfig = Field(default_factory=BackendConfig)
    cache: str | None = None  # request cache path (default: ~/.cache/tinyschool/requests.sqlite)
    samples_per_prompt: int = Field(1, ge=1, description="k items in a row share slots and prompt (self-consistency groups)")
    select: str = Field("all", pattern="^(all|best)$", description="best: keep only the best of each prompt's k samples at cleaning (filters/select.py)")
    slot_overrides: dict[str, dict[str, Any]] = Field(default_factory=dict, description="[slot_overrides.<slot>]: keys replacing the template's slot spec (e.g. a path)")
