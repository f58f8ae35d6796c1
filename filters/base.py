"""What an annotator is: a small class with a pydantic `Config` (its thresholds and their documented
defaults), the Arrow type of each column it adds, and `annotate(doc) -> (values, drop_reason)`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import BaseModel, ConfigDict


class AnnotatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True


@dataclass(frozen=True)
class Resources:
    """Shared inputs some annotators need (loaded once per worker process)."""

    vocab_path: Path | None = None


class Annotator:
    name: ClassVar[str]
    Config: ClassVar[type[AnnotatorConfig]] = AnnotatorConfig
    columns: ClassVar[dict[str, pa.DataType]] = {}

    def __init__(self, cfg: AnnotatorConfig, resources: Resources):
        self.cfg = cfg
        self.resources = resources

    def annotate(self, doc) -> tuple[dict[str, Any], str | None]:
        """The doc's value for each of `columns`, and a drop reason ("<name>:<check>") or None."""
        raise NotImplementedError
