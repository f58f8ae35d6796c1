"""Data, not code: prompt templates, vocabularies, lists, recipes, eval prompts.

This module only says where the data lives, so that an installed wheel finds it too.
"""
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def resolve(kind: str, name: str, suffix: str) -> Path:
    """A bare name (`tinystories`) means `prompts/<kind>/<name><suffix>`; anything else is a path."""
    p = Path(name)
    if p.suffix or "/" in name or p.exists():
        return p
    return ROOT / kind / f"{name}{suffix}"
