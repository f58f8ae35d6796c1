"""Completion post-processors by template kind: a template of kind K gets POSTPROCESSORS[K] as the
runner's `postprocess` hook (fn(item, completion) -> completion; an error it sets makes a failed row).
A new kind is one function and one line here."""
from __future__ import annotations

import importlib
from typing import Callable

POSTPROCESSORS: dict[str, str] = {
    "math": "generators.math_parse:postprocess",
}


def postprocessor(kind: str) -> Callable | None:
    target = POSTPROCESSORS.get(kind)
    if target is None:
        return None
    module, fn = target.split(":")
    return getattr(importlib.import_module(module), fn)
