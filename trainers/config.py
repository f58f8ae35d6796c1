"""The experiment file (EXPERIMENT.toml): corpus, tokenizer, model, training, curricula, seeds."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from corpora.errors import UserError, format_validation_error, read_toml


class ExperimentError(UserError):
    """One line naming the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenizerConfig(_Strict):
    vocab_size: int = Field(1024, ge=260, le=65536)


class ModelSection(_Strict):
    preset: str = "tiny"
    dim: int | None = None
    n_layers: int | None = None
    n_heads: int | None = None
    n_kv_heads: int | None = None
    hidden_dim: int | None = None


class TrainConfig(_Strict):
    tokens: int = Field(1_000_000, gt=0, description="token budget of every run")
    batch_size: int = Field(32, gt=0)
    context: int | None = Field(None, gt=8, description="default: the preset's context")
    lr: float = Field(3e-3, gt=0)
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    warmup: float = Field(0.05, ge=0, lt=1, description="share of steps")
    schedule: Literal["cosine", "wsd"] = "cosine"
    decay: float = Field(0.2, gt=0, le=1, description="WSD: share of steps in the final decay")
    weight_decay: float = Field(0.1, ge=0)
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = Field(1.0, ge=0)
    eval_every: int = Field(50, gt=0)
    eval_docs: int = Field(256, gt=0, description="held-out documents evaluated (the first N by id hash)")
    log_every: int = Field(10, gt=0)
    checkpoint_every: int = Field(0, ge=0, description="0: at every evaluation")
    device: str = Field("auto", description="cpu, cuda, cuda:1, mps or auto")
    dtype: Literal["auto", "float32", "bfloat16"] = Field("auto", description="bfloat16 = autocast; auto: bfloat16 on a GPU, float32 on a CPU")
    threads: int | None = Field(None, gt=0, description="torch threads of a single run (default: every core this process may run on, its CPU affinity)")
    compile: bool | Literal["auto"] = Field("auto", description="torch.compile the training step; auto: on a GPU, and on a CPU when the run is long enough to repay the compilation")
    processes: int | Literal["auto"] = Field("auto", description="CPU: train one run data-parallel over this many processes (one per core; gradients averaged every step); auto: one per core when the run is long enough and the model small enough that it measured faster (trainers.train.data_parallel), else 1")


class ReferenceConfig(_Strict):
    preset: str = "tiny"
    tokens: int = Field(200_000, gt=0)


class MixtureStageConfig(_Strict):
    until: float = Field(gt=0, le=1)
    weights: dict[str, float]


class CurriculumConfig(_Strict):
    name: str
    order: Literal["easy_to_hard", "hard_to_easy", "random"] = "random"
    scorer: str | None = Field(None, description="word_rarity, length, model_loss or column:NAME (-column:NAME inverts)")
    pacing: str = "none"
    start: float = Field(0.1, gt=0, le=1)
    ramp: float = Field(0.8, gt=0, le=1)
    stages: int = Field(4, gt=0, description="step pacing: number of buckets")
    context_pacing: str | None = Field(None, description="sequence-length curriculum: a pacing function")
    context_start: float = Field(0.25, gt=0, le=1)
    mixture: list[MixtureStageConfig] = Field(default_factory=list)
    vocabulary_pacing: str | None = Field(None, description="CLIMB vocabulary curriculum: a pacing function of the allowed share of the vocabulary")
    vocabulary_start: float = Field(0.2, gt=0, le=1, description="share of the (most frequent) vocabulary allowed at step 0")
    batching: Literal["windows", "decomposed"] = Field("windows", description="decomposed: Dataset Decomposition's length buckets")
    min_chunk: int = Field(8, ge=2, description="decomposed: shortest chunk kept (a power of two)")

    @model_validator(mode="after")
    def _check(self):
        if self.vocabulary_pacing and (self.order != "random" or self.pacing != "none"):
            raise ValueError(f"curriculum {self.name}: vocabulary_pacing orders the documents itself; leave order and pacing at their defaults")
        if self.min_chunk & (self.min_chunk - 1):
            raise ValueError(f"curriculum {self.name}: min_chunk must be a power of two (got {self.min_chunk})")
        return self


class SamplesConfig(_Strict):
    prompts: list[str] = Field(default_factory=lambda: ["Once upon a time", "The little dog"])
    max_tokens: int = 80
    temperature: float = 0.8
    top_k: int = 50
    seed: int = 0


class EvaluateConfig(_Strict):
    """LLM-judge evaluation of every run of an ablation (`tinyschool ablate`)."""

    enabled: bool = True
    count: int = Field(8, gt=0, description="story beginnings completed and graded per run")
    beginnings: str | None = Field(None, description="JSONL of beginnings (default prompts/eval/beginnings.jsonl)")
    temperature: float | None = Field(None, ge=0, description="of the trained model (default: [samples] temperature)")
    max_tokens: int = Field(80, gt=0)
    judges: list[dict[str, Any]] = Field(default_factory=list, description="backend tables (name, model, base_url...); none: the embedded model")


class ProbeConfig(_Strict):
    """Minimal-pair probes (BLiMP) of every run of an ablation (`tinyschool ablate`)."""

    enabled: bool = True
    suite: str = Field("blimp", description="blimp, or pairs (a JSONL of good/bad pairs)")
    data: str | None = Field(None, description="the suite's folder or file; default: ../shared/data/blimp or data/blimp, "
                                               "relative to the working directory or the repository, if there")
    paradigms: list[str] = Field(default_factory=list, description="a subset of paradigms (default: all)")
    probe_every: int = Field(0, ge=0, description="steps between probes for learning curves (needs step checkpoints)")
    baselines: bool = Field(True, description="unigram, bigram, 5-gram and the untrained model beside every run")
    batch_size: int = Field(128, gt=0)
class MixValidateConfig(_Strict):
    """The winner trained at a larger preset beside the uniform and the natural mixture."""

    enabled: bool = True
    preset: str = "1m"
    tokens: int | None = Field(None, gt=0, description="default: [train] tokens")
    seeds: list[int] = Field(default_factory=lambda: [1, 2, 3], min_length=1)


class MixSearchConfig(_Strict):
    """`tinyschool mixsearch`: RegMix-style search for the mixture of the experiment's corpora."""

    target: str | dict[str, float] = Field("main", description="a corpus (its held-out loss), {corpus = weight...}, or probe:NAME")
    domains: list[str] = Field(default_factory=list, description="corpora the mixture is over (default: all)")
    proxies: int = Field(48, ge=4)
    preset: str = "tiny"
    tokens: int = Field(200_000, gt=0, description="token budget of each proxy")
    seed: int = Field(1, description="the proxies' training seed (and the sampling seed)")
    concentration: float = Field(1.0, gt=0, description="Dirichlet concentration per domain (1 = flat over the simplex)")
    center: Literal["uniform", "natural"] = Field("uniform", description="natural: the prior's mean is the token shares")
    bounds: dict[str, list[float]] = Field(default_factory=dict, description="corpus -> [min, max] weight")
    candidates: int = Field(100_000, ge=100, description="mixtures sampled from the prior and ranked by the regression")
    top: int = Field(100, ge=1, description="the winner is the mean of the top-k predicted candidates (RegMix)")
    folds: int = Field(5, ge=2)
    regression: Literal["auto", "linear", "gbm"] = "auto"
    validate_: MixValidateConfig = Field(default_factory=MixValidateConfig, alias="validate")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SweepConfig(_Strict):
    """Axes crossed with curricula and seeds (`tinyschool sweep`): any subset, every combination."""

    preset: list[str] = Field(default_factory=list, description="model presets")
    tokens: list[int] = Field(default_factory=list, description="token budgets")
    vocab_size: list[int] = Field(default_factory=list, description="tokenizer vocabulary sizes")
    context: list[int] = Field(default_factory=list, description="context lengths")
    bootstrap: int = Field(200, ge=0, description="bootstrap resamples of the L(N, D) fit's intervals")

    @model_validator(mode="after")
    def _check(self):
        for axis in ("preset", "tokens", "vocab_size", "context"):
            v = getattr(self, axis)
            if len(set(v)) != len(v):
                raise ValueError(f"sweep.{axis}: values must be distinct (got {v})")
        if any(t <= 0 for t in self.tokens) or any(not 260 <= v <= 65536 for v in self.vocab_size) or any(c <= 8 for c in self.context):
            raise ValueError("sweep: tokens must be > 0, vocab_size in [260, 65536], context > 8")
        if not (self.preset or self.tokens or self.vocab_size or self.context):
            raise ValueError("sweep: give at least one axis (preset, tokens, vocab_size, context)")
        return self


class Experiment(_Strict):
    name: str
    description: str = ""
    corpus: str
    corpora: dict[str, str] = Field(default_factory=dict, description="more corpora by name, for staged mixtures")
    out: str = ""
    seeds: list[int] = Field(default_factory=lambda: [1, 2, 3], min_length=1)
    workers: int | None = Field(None, gt=0)
    heldout: float = Field(0.1, gt=0, lt=1)
    heldout_from: str | None = Field(None, description="a fixed held-out set instead of a split of the main corpus: a corpus folder, "
                                     "a JSONL file with a `text` field, or a bare name in prompts/eval (heldout_stories: 150 "
                                     "children's stories written for the project); every main document then trains")
    min_heldout_docs: int = Field(50, ge=0, description="fewer evaluated held-out documents: a warning, in red in the report")
    min_heldout_tokens: int = Field(20_000, ge=0, description="fewer evaluated held-out tokens: the same warning")
    scorer: str = Field("word_rarity", description="default scorer, and the one that buckets validation by difficulty")
    buckets: int = Field(3, ge=1, le=10)
    baseline: str = "random"
    target_loss: float | None = None
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)
    model: ModelSection = Field(default_factory=ModelSection)
    train: TrainConfig = Field(default_factory=TrainConfig)
    reference: ReferenceConfig = Field(default_factory=ReferenceConfig)
    samples: SamplesConfig = Field(default_factory=SamplesConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    probe: ProbeConfig = Field(default_factory=ProbeConfig)
    curricula: list[CurriculumConfig] = Field(min_length=1)
    mixsearch: MixSearchConfig | None = None
    sweep: SweepConfig | None = None

    @model_validator(mode="after")
    def _check(self):
        names = [c.name for c in self.curricula]
        if len(set(names)) != len(names):
            raise ValueError(f"curriculum names must be unique (got {names})")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct (got {self.seeds})")
        if "main" in self.corpora:
            raise ValueError("corpora: the name 'main' is the experiment's own corpus")
        if self.mixsearch is not None:
            _check_mixsearch(self.mixsearch, list(self.sources()))
        return self

    @property
    def out_dir(self) -> Path:
        return Path(self.out or f"runs/{self.name}")

    def curriculum(self, name: str | None) -> CurriculumConfig:
        if name is None:
            return self.curricula[0]
        for c in self.curricula:
            if c.name == name:
                return c
        raise ExperimentError(f"no curriculum named {name!r} (have: {', '.join(c.name for c in self.curricula)})")

    def scorers(self) -> list[str]:
        """Every scorer the experiment needs, the bucketing one first."""
        out = [self.scorer]
        for c in self.curricula:
            s = c.scorer or self.scorer
            if c.order != "random" and s not in out:
                out.append(s)
        return out

    def sources(self) -> dict[str, str]:
        return {"main": self.corpus, **self.corpora}

    def data_fingerprint(self) -> str:
        d = {"sources": self.sources(), "heldout": self.heldout, "heldout_from": self.heldout_from, "tokenizer": self.tokenizer.model_dump(),
             "scorers": self.scorers(), "buckets": self.buckets}
        if "model_loss" in [s.lstrip("-") for s in self.scorers()]:
            d["reference"] = self.reference.model_dump()
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _check_mixsearch(ms: MixSearchConfig, sources: list[str]) -> None:
    for n in ms.domains + list(ms.bounds):
        if n not in sources:
            raise ValueError(f"mixsearch: no corpus named {n!r} (corpora: {', '.join(sources)})")
    domains = ms.domains or sources
    if len(domains) < 2:
        raise ValueError("mixsearch: needs at least two corpora to mix (add [corpora])")
    lo = hi = 0.0
    for n in domains:
        b = ms.bounds.get(n, [0.0, 1.0])
        if len(b) != 2 or not 0 <= b[0] <= b[1] <= 1:
            raise ValueError(f"mixsearch.bounds.{n}: must be [min, max] with 0 <= min <= max <= 1 (got {b})")
        lo, hi = lo + b[0], hi + b[1]
    if lo > 1 or hi < 1:
        raise ValueError(f"mixsearch.bounds: no mixture adds up to 1 within them (minimums add to {lo:g}, maximums to {hi:g})")


def load_experiment(path: str | Path, overrides: dict[str, Any] | None = None) -> Experiment:
    path = Path(path)
    data = read_toml(path, "experiment", ExperimentError)
    data.setdefault("name", path.stem)
    for k, v in (overrides or {}).items():
        if v is not None:
            data[k] = v
    try:
        return Experiment.model_validate(data)
    except ValidationError as e:
        raise ExperimentError(format_validation_error(path, e)) from None
