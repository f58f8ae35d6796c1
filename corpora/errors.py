"""Errors shown to users, and the one formatter of TOML + pydantic problems.

Every package may import this module (it imports nothing of the project). The CLI prints any
`UserError` as one line and exits 2 (what the user gave us is wrong: a recipe key, a flag, a
template, an unreachable cluster); a `CorpusError` or `BackendError` exits 1 (the data or a
service failed). A package's own error (RecipeError, TemplateError, ExperimentError, ...)
subclasses UserError, so that the CLI needs no list of them.
"""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError


class UserError(Exception):
    """An error in what the user gave us: printed as one line, exit code 2."""


class ExecutorError(UserError):
    """A problem with the executor setting (Ray missing, cluster unreachable, a task that kept dying)."""


class TemplateError(UserError, ValueError):
    """A prompt template (or a slot source it names) that cannot be used: one line naming the file and the key."""


# pydantic error types whose own wording is not the clearest for a config file's reader
_MESSAGES = {"extra_forbidden": "unknown key", "missing": "required key is missing"}


def validation_message(e: ValidationError, top: str = "(top level)", more: bool = True) -> str:
    """`KEY: problem` for the first problem of a pydantic error (and how many others there are)."""
    err = e.errors()[0]
    loc = ".".join(str(x) for x in err["loc"]) or top
    msg = _MESSAGES.get(err["type"], err["msg"])
    if err["type"] not in _MESSAGES and "input" in err and not isinstance(err["input"], (dict, list)):
        msg += f" (got {err['input']!r})"
    n = len(e.errors()) - 1
    return f"{loc}: {msg}" + (f" (and {n} more problem{'s' if n > 1 else ''})" if more and n else "")


def format_validation_error(path: Path | str, e: ValidationError) -> str:
    """`FILE: KEY: problem`: one line for a config file that does not validate."""
    return f"{path}: {validation_message(e)}"


def read_toml(path: Path | str, what: str, error: type[Exception] = UserError) -> dict[str, Any]:
    """A TOML file as a dict; a missing, broken or non-UTF-8 file is one `error` line naming it."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: {what} file not found")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise error(f"{path}: invalid TOML: {e}") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not a UTF-8 text file") from None
