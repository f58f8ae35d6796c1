"""Configuration of the transform stage: a transform recipe (TOML), checked on load like a generation
recipe. Example: prompts/transforms/leaner_rewrite.toml."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from generators.config import BackendConfig, SamplingConfig


class SourceConfig(BaseModel):
    """The corpus to read: a folder made by `generate`, `import` or `transform`, and its stage."""

    model_config = ConfigDict(extra="forbid")
    corpus: str
    stage: Literal["raw", "annotated", "clean"] = "clean"
    limit: int | None = Field(None, gt=0, description="the first this many documents (in shard and row order)")


class TransformSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="a transform of generators/transforms.py: rewrite, translate, generate_in, shuffle_sentences, shuffle_words, truncate")
    params: dict[str, Any] = Field(default_factory=dict, description="the transform's parameters (checked against its Params)")


class TransformRecipe(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    out: str = Field("", description="corpus folder to write (default data/<name>)")
    license: str = "unknown"
    source: SourceConfig
    transform: TransformSpec
    language: str = Field("en", description="language of the output (vocabulary check, readability, prompts)")
    source_language: str = Field("en", description="language of the source documents")
    vocabulary: str | None = Field("default", description="target vocabulary (prompts/vocab/<name>.tsv or a path); none: no OOV figures")
    seed: int = 0
    shard_size: int = Field(64, gt=0)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    backend: BackendConfig = Field(default_factory=BackendConfig)
    cache: str | None = None  # request cache path (default: the generation cache)

    @property
    def out_dir(self) -> Path:
        return Path(self.out or f"data/{self.name}")
