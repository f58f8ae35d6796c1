"""Structured output: a template's JSON schema, how a server is asked for it, and the check of every answer.

A template sets `json_schema` either to a JSON schema (a TOML table) or to `{pydantic = "module:Model"}`,
which names a pydantic model whose schema is used. Servers are asked for JSON through
`response_format` (OpenAI, vLLM, llama.cpp, Ollama) or vLLM's older `guided_json`; the in-process
vLLM backend uses guided decoding. Whatever the server promises, every answer is parsed and
validated here: an answer that is not JSON or does not match becomes a failed completion with
error_kind "invalid" and the validation error, so it is stored as a failed row and retried on a
later run (it never enters the request cache).
"""
from __future__ import annotations

import importlib
import json
import re
from functools import lru_cache
from typing import Any

from generators.base import Completion, Request
from generators.templates import TemplateError

_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n?```\s*$", re.S)


class SchemaError(TemplateError):
    """A template's json_schema is unusable (the CLI prints it as one line)."""


def resolve_schema(spec: dict[str, Any] | None, where: str = "template") -> dict[str, Any] | None:
    """The JSON schema a template asks for: as written, or from a pydantic model path."""
    if spec is None:
        return None
    try:
        if set(spec) == {"pydantic"}:
            return _pydantic_schema(spec["pydantic"])
        _validator_for(json.dumps(spec, sort_keys=True))  # fail early on a broken schema
    except SchemaError as e:
        raise SchemaError(f"{where}: {e}") from None
    return spec


@lru_cache(maxsize=32)
def _pydantic_schema(path: str) -> dict[str, Any]:
    module, _, name = path.partition(":")
    if not module or not name:
        raise SchemaError(f"json_schema.pydantic: expected 'module:Model', got {path!r}")
    try:
        model = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise SchemaError(f"json_schema.pydantic: cannot import {path!r}: {e}") from None
    if not hasattr(model, "model_json_schema"):
        raise SchemaError(f"json_schema.pydantic: {path!r} is not a pydantic model")
    return model.model_json_schema()


@lru_cache(maxsize=64)
def _validator_for(schema_json: str):
    import jsonschema

    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as e:
        raise SchemaError(f"json_schema is not a valid JSON schema: {e.message}") from None
    return cls(schema)


def parse_json_answer(text: str) -> Any:
    """The JSON value in an answer; a ```json fence around it is tolerated."""
    m = _FENCE.match(text)
    return json.loads(m.group(1) if m else text)


def validation_error(text: str, schema: dict[str, Any]) -> str | None:
    """None when `text` is JSON matching `schema`, else a one-line reason."""
    try:
        value = parse_json_answer(text)
    except ValueError as e:
        return f"answer is not JSON: {e}"
    validator = _validator_for(json.dumps(schema, sort_keys=True))
    err = next(iter(sorted(validator.iter_errors(value), key=lambda e: list(e.path))), None)
    if err is None:
        return None
    where = "$" + "".join(f"[{p!r}]" if isinstance(p, str) else f"[{p}]" for p in err.path)
    return f"answer does not match the schema at {where}: {err.message}"


def check(request: Request, c: Completion) -> Completion:
    """Validate one successful completion against its request's schema (no-op without a schema)."""
    if request.json_schema is None or not c.ok:
        return c
    err = validation_error(c.text, request.json_schema)
    if err is not None:
        c.error, c.error_kind, c.finish_reason = err, "invalid", "error"
    return c


def response_format(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI `response_format` for a schema (non-strict: strict mode rejects many ordinary schemas)."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", str(schema.get("title") or "answer"))[:64] or "answer"
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": False}}
