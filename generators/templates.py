"""Prompt templates (TOML + Jinja2) and the seeded slot sampler.

A template file names its slots; each slot has a `source` that says how a value is drawn:

    vocab   a word of the given POS from the recipe's vocabulary      (pos, count)
    list    one item (or `count` items) from `items` or prompts/lists/<list>.txt (weights optional)
    subset  a random subset of `items`/`list`, between `min` and `max` items, in list order
    int     an integer in [min, max]
    jsonl   `count` records drawn from a JSONL file (e.g. few-shot examples)

Slot samplers are a registry (`SLOT_SOURCES`): a new source is one function and one line.
Every draw uses a `random.Random` seeded from (recipe seed, recipe name, template, sample index),
so the same recipe and seed always give the same slots, prompts and ids.
"""
from __future__ import annotations

import hashlib
import json
import random
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, List

import jinja2
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import prompts
from corpora.errors import TemplateError, format_validation_error, read_toml
from corpora.vocab import Vocabulary
from generators.gsm8k import slot_gsm8k


class SlotSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str
    pos: str | None = None
    count: int = 1
    items: List[Any] | None = None
    list: str | None = None  # noqa: A003 (the TOML key users write)
    weights: List[float] | None = None
    min: int = 0
    max: int | None = None
    path: str | None = None
    fields: List[str] | None = None


class Template(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    kind: str = "story"
    system: str = ""
    prompt: str
    prefill: str = ""  # Jinja: the start of the answer (forces varied openings on small models)
    document: str = "{{ completion }}"  # Jinja: the stored text, from the completion and the slots
    stop: list[str] = Field(default_factory=list)
    constants: dict[str, Any] = Field(default_factory=dict)
    slots: dict[str, SlotSpec] = Field(default_factory=dict)
    json_schema: dict[str, Any] | None = None
    path: str = ""


_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)


def load_template(name_or_path: str) -> Template:
    path = prompts.resolve("templates", name_or_path, ".toml")
    if not path.exists():
        raise TemplateError(f"template {name_or_path!r}: file not found ({path})")
    data = read_toml(path, "template", TemplateError)
    data.setdefault("path", str(path))
    try:
        t = Template.model_validate(data)
    except ValidationError as e:
        raise TemplateError(format_validation_error(path, e)) from None
    for key in ("prompt", "prefill", "document", "system"):
        try:
            _ENV.parse(getattr(t, key))
        except jinja2.TemplateSyntaxError as e:
            raise TemplateError(f"{path}: {key}: Jinja syntax error on line {e.lineno}: {e.message}") from None
    for name, spec in t.slots.items():
        if spec.source not in SLOT_SOURCES:
            raise TemplateError(f"{path}: slots.{name}.source: unknown source {spec.source!r} (known: {', '.join(SLOT_SOURCES)})")
    return t


@lru_cache(maxsize=64)
def read_list(name: str) -> tuple[str, ...]:
    path = prompts.resolve("lists", name, ".txt")
    if not path.exists():
        raise TemplateError(f"list {name!r}: file not found ({path})")
    return tuple(line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#"))


@lru_cache(maxsize=16)
def read_jsonl(path: str) -> tuple[dict, ...]:
    p = Path(path)
    if not p.exists():
        raise TemplateError(f"jsonl slot source: file not found ({p})")
    return tuple(json.loads(line) for line in p.read_text().splitlines() if line.strip())


def _items(spec: SlotSpec) -> list[Any]:
    if spec.items is not None:
        return list(spec.items)
    if spec.list is not None:
        return list(read_list(spec.list))
    raise TemplateError("slot needs `items` or `list`")


def _pick(rng: random.Random, items: list[Any], spec: SlotSpec) -> Any:
    if spec.count == 1:
        return rng.choices(items, weights=spec.weights)[0] if spec.weights else rng.choice(items)
    return rng.sample(items, spec.count)


def slot_vocab(rng: random.Random, spec: SlotSpec, vocab: Vocabulary | None) -> Any:
    if vocab is None:
        raise TemplateError("a `vocab` slot needs a vocabulary in the recipe")
    words = vocab.words(spec.pos)
    if not words:
        raise TemplateError(f"vocabulary {vocab.path} has no words with POS {spec.pos!r}")
    return _pick(rng, words, spec)


def slot_list(rng: random.Random, spec: SlotSpec, vocab: Vocabulary | None) -> Any:
    return _pick(rng, _items(spec), spec)


def slot_subset(rng: random.Random, spec: SlotSpec, vocab: Vocabulary | None) -> Any:
    items = _items(spec)
    k = rng.randint(spec.min, spec.max if spec.max is not None else len(items))
    chosen = set(rng.sample(range(len(items)), k))
    return [x for i, x in enumerate(items) if i in chosen]


def slot_int(rng: random.Random, spec: SlotSpec, vocab: Vocabulary | None) -> Any:
    return rng.randint(spec.min, spec.max if spec.max is not None else spec.min)


def slot_jsonl(rng: random.Random, spec: SlotSpec, vocab: Vocabulary | None) -> Any:
    if not spec.path:
        raise TemplateError("a `jsonl` slot needs `path`")
    path = spec.path
    if not Path(path).is_absolute() and not Path(path).exists():
        path = str(prompts.ROOT / path)
    rows = read_jsonl(path)
    picked = [rows[i] for i in rng.sample(range(len(rows)), spec.count)]
    if spec.fields:
        picked = [{k: r[k] for k in spec.fields} for r in picked]
    return picked


SLOT_SOURCES: dict[str, Callable[[random.Random, SlotSpec, Vocabulary | None], Any]] = {
    "vocab": slot_vocab,
    "list": slot_list,
    "subset": slot_subset,
    "int": slot_int,
    "jsonl": slot_jsonl,
    "gsm8k": slot_gsm8k,  # GSM8K few-shots with their answers as Python (generators/gsm8k.py)
}


def item_rng(seed: int, recipe: str, template: str, index: int) -> random.Random:
    digest = hashlib.sha256(f"{seed}\x1f{recipe}\x1f{template}\x1f{index}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def doc_id(recipe: str, template: str, slots: dict[str, Any], index: int) -> str:
    blob = json.dumps([recipe, template, slots, index], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def item_seed(seed: int, did: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}\x1f{did}".encode()).digest()[:4], "big") & 0x7FFFFFFF


class PromptItem(BaseModel):
    index: int
    id: str
    slots: dict[str, Any]
    system: str
    prompt: str
    prefill: str
    seed: int


def sample_item(t: Template, vocab: Vocabulary | None, recipe: str, seed: int, index: int,
                samples_per_prompt: int = 1) -> PromptItem:
    # items index*k .. index*k+k-1 share their slots (and prompt); their ids and sampling seeds differ
    rng = item_rng(seed, recipe, t.name, index // samples_per_prompt)
    slots = {name: SLOT_SOURCES[spec.source](rng, spec, vocab) for name, spec in t.slots.items()}
    ctx = {**t.constants, **slots}
    did = doc_id(recipe, t.name, slots, index)
    return PromptItem(
        index=index,
        id=did,
        slots=slots,
        system=_ENV.from_string(t.system).render(ctx).strip(),
        prompt=_ENV.from_string(t.prompt).render(ctx).strip(),
        prefill=_ENV.from_string(t.prefill).render(ctx),
        seed=item_seed(seed, did),
    )


def apply_slot_overrides(t: Template, overrides: dict[str, dict[str, Any]] | None) -> Template:
    """The template with some slot specs' keys replaced (a recipe's `[slot_overrides.<slot>]`)."""
    if not overrides:
        return t
    slots = dict(t.slots)
    for name, keys in overrides.items():
        if name not in slots:
            raise TemplateError(f"{t.path}: slot_overrides.{name}: the template has no slot {name!r} (slots: {', '.join(slots)})")
        try:
            slots[name] = SlotSpec.model_validate({**slots[name].model_dump(exclude_none=True), **keys})
        except Exception as e:
            raise TemplateError(f"slot_overrides.{name}: {str(e).splitlines()[-2].strip() if len(str(e).splitlines()) > 1 else e}") from None
    return t.model_copy(update={"slots": slots})


def render_document(t: Template, item_slots: dict[str, Any], completion: str) -> str:
    return _ENV.from_string(t.document).render({**t.constants, **item_slots, "completion": completion}).strip()


def render_text(source: str, ctx: dict[str, Any]) -> str:
    """Render one Jinja string of a template with the given values (e.g. a judge prompt)."""
    return _ENV.from_string(source).render(ctx).strip()
