"""Search, don't guess: the mixture of several corpora that a regression over proxy runs predicts best
(RegMix, Liu et al. 2024), then checked at a larger model.

1. Proxies. `proxies` mixtures are drawn from a Dirichlet prior over the domains (concentration per
   domain; centred on the uniform mixture or on the natural token shares), within per-corpus bounds.
   Each is a curriculum (the experiment's first curriculum with that mixture) trained at the proxy
   preset and budget by the ablation runner: in parallel, resumable, finished runs never repeated
   (proxy i's mixture depends only on the seed and i, so asking for more proxies keeps the first).
2. Regression. Every registered regressor (linear, gradient-boosted trees) is cross-validated on
   (weights -> target); the one with the best held-out Spearman rho ranks `candidates` mixtures drawn
   from the same prior, and the winner is the mean of the `top` best (RegMix's averaging).
3. Validation. The winner, the uniform and the natural mixture are trained at the validation preset
   over several seeds; the report gives each one's target with a 95% interval and the verdicts
   (Welch's t-test, as the ablation report).

Writes into the experiment folder: mixture.parquet (every proxy's weights, result and out-of-fold
predictions), report.md, predicted_vs_observed.png, winner.toml (a ready [[curricula]] entry);
the runs live in proxies/ and validate/ (each an ordinary ablation folder with its own report).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curricula import CurriculumError
from trainers.ablate import run_ablation
from trainers.config import CurriculumConfig, Experiment, MixSearchConfig
from trainers.prepare import Prepared, share_prepared
from trainers.regression import REGRESSORS, Fit, best_fit, cross_validate
from trainers.probe_report import blimp_score
from trainers.report import query_command, summarize, verdict
from trainers.targets import PROBES, make_target
from trainers.train import prepare_experiment, run_dir

PROBES["blimp"] = blimp_score  # target = "probe:blimp": BLiMP accuracy of each proxy (trainers/probe_report.py)

WINNER, UNIFORM, NATURAL = "mixsearch-winner", "uniform", "natural"


@dataclass
class Prior:
    """Dirichlet(alpha) restricted to lo <= w <= hi (by rejection)."""

    domains: list[str]
    alpha: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        out, drawn = [], 0
        while sum(len(o) for o in out) < n:
            w = rng.dirichlet(self.alpha, size=max(64, 2 * n))
            drawn += len(w)
            out.append(w[((w >= self.lo - 1e-12) & (w <= self.hi + 1e-12)).all(1)])
            if drawn >= 1000 * max(n, 64) and sum(len(o) for o in out) < n:
                raise CurriculumError("mixsearch: the bounds keep almost every mixture of the prior out "
                                      f"({sum(len(o) for o in out)} of {drawn} drawn were inside); widen them or raise the concentration")
        return np.concatenate(out)[:n]


def domains_of(exp: Experiment) -> list[str]:
    return exp.mixsearch.domains or list(exp.sources())


def natural_shares(prep: Prepared, domains: list[str]) -> np.ndarray:
    """Each domain's share of the training tokens (documents plus their end-of-text token)."""
    t = np.array([sum(len(prep.sources[d].docs[i]) + 1 for i in prep.sources[d].train_index()) for d in domains], dtype=float)
    return t / t.sum()


def make_prior(ms: MixSearchConfig, domains: list[str], natural: np.ndarray) -> Prior:
    k = len(domains)
    centre = natural if ms.center == "natural" else np.full(k, 1.0 / k)
    lo = np.array([ms.bounds.get(d, [0.0, 1.0])[0] for d in domains])
    hi = np.array([ms.bounds.get(d, [0.0, 1.0])[1] for d in domains])
    return Prior(domains, np.maximum(ms.concentration * k * centre, 1e-3), lo, hi)


def base_curriculum(exp: Experiment) -> CurriculumConfig:
    base = exp.curricula[0]
    if base.mixture:
        raise CurriculumError(f"mixsearch: the base curriculum {base.name!r} (the first) has its own mixture; "
                              "give one without `mixture` (the search supplies it)")
    return base


def mix_curriculum(base: CurriculumConfig, name: str, weights: dict[str, float]) -> CurriculumConfig:
    return CurriculumConfig.model_validate({**base.model_dump(mode="json"), "name": name,
                                            "mixture": [{"until": 1.0, "weights": weights}]})


def weights_dict(domains: list[str], w: np.ndarray, evaluated: list[str], digits: int = 6) -> dict[str, float]:
    """A mixture as curriculum weights; corpora only evaluated (a target outside the domains) get 0."""
    d = {n: round(float(x), digits) for n, x in zip(domains, w)}
    return {**d, **{n: 0.0 for n in evaluated if n not in d}}


def variant(exp: Experiment, out: Path, preset: str, tokens: int, seeds: list[int], curricula: list[CurriculumConfig],
            baseline: str) -> Experiment:
    """The experiment at another preset and budget, with these curricula, in its own folder."""
    d = exp.model_dump(mode="json", by_alias=True)
    d.update(out=str(out), seeds=seeds, baseline=baseline, curricula=[c.model_dump(mode="json") for c in curricula],
             model={"preset": preset}, train={**d["train"], "tokens": tokens}, evaluate={**d["evaluate"], "enabled": False})
    return Experiment.model_validate(d)


def final_metrics(run: Path) -> dict[str, float]:
    """The last logged value of every metric of a finished run."""
    t = pq.read_table(run / "metrics.parquet", columns=["step", "metric", "value"]).to_pylist()
    out: dict[str, tuple[int, float]] = {}
    for r in t:
        if r["metric"] not in out or r["step"] >= out[r["metric"]][0]:
            out[r["metric"]] = (r["step"], r["value"])
    return {k: v for k, (_, v) in out.items()}


@dataclass
class SearchResult:
    domains: list[str]
    proxies: list[dict]  # name, weights, target, metrics
    fits: list[Fit]
    chosen: Fit
    winner: np.ndarray
    uniform: np.ndarray
    natural: np.ndarray
    predicted: dict[str, float]  # winner / uniform / natural, target units
    target_name: str
    higher_is_better: bool
    validation: dict = field(default_factory=dict)
    paths: dict = field(default_factory=dict)


def run_mixsearch(exp: Experiment, executor, workers: int | None = None, log: Callable[[str], None] = lambda s: None,
                  on_proxy: Callable[[dict], None] | None = None, on_validation: Callable[[dict], None] | None = None,
                  validate: bool | None = None) -> SearchResult:
    ms = exp.mixsearch
    if ms is None:
        raise CurriculumError(f"experiment {exp.name}: no [mixsearch] table")
    domains = domains_of(exp)
    target = make_target(ms.target, list(exp.sources()))
    evaluated = list(target.corpora)
    base = base_curriculum(exp)
    out = exp.out_dir
    k = len(domains)
    uniform = np.full(k, 1.0 / k)

    # proxies: prepare once (the data does not depend on the mixture), then draw the mixtures
    first = variant(exp, out / "proxies", ms.preset, ms.tokens, [ms.seed],
                    [mix_curriculum(base, UNIFORM, weights_dict(domains, uniform, evaluated))], UNIFORM)
    prep = prepare_experiment(first, log)
    natural = natural_shares(prep, domains)
    prior = make_prior(ms, domains, natural)
    W = np.stack([prior.sample(np.random.default_rng([ms.seed, i, 0x9E01]), 1)[0] for i in range(ms.proxies)])
    names = [f"proxy-{i:03d}" for i in range(ms.proxies)]
    curricula = [mix_curriculum(base, n, weights_dict(domains, w, evaluated)) for n, w in zip(names, W)]
    pexp = variant(exp, out / "proxies", ms.preset, ms.tokens, [ms.seed], curricula, names[0])
    log(f"mixsearch {exp.name}: {ms.proxies} proxies ({ms.preset}, {ms.tokens:,} tokens each) over {', '.join(domains)}; "
        f"target: {target.name}")
    run_ablation(pexp, executor, workers, on_done=on_proxy, log=log)

    proxies, y = [], []
    for n, w in zip(names, W):
        run = run_dir(pexp, n, ms.seed)
        final = final_metrics(run)
        loss = target.loss(run, final)
        y.append(loss)
        proxies.append({"proxy": n, "weights": w, "target": target.value(run, final), "loss": loss,
                        "metrics": {m: v for m, v in final.items() if m.startswith("val_loss") or m.startswith("val_bpb")}})
    X, y = np.asarray(W, dtype=float), np.asarray(y)
    wanted = list(REGRESSORS) if ms.regression == "auto" else [ms.regression]
    fits = [cross_validate(r, X, y, ms.folds, ms.seed) for r in wanted]
    chosen = best_fit(fits)
    cand = prior.sample(np.random.default_rng([ms.seed, 0xCA4D]), ms.candidates)
    pred = chosen.predict(cand)
    top = cand[np.argsort(pred, kind="stable")[: min(ms.top, len(cand))]]
    winner = np.round(top.mean(0), 4)
    winner = winner / winner.sum()
    sign = -1.0 if target.higher_is_better else 1.0
    predicted = {n: sign * float(chosen.predict(w[None])[0]) for n, w in ((WINNER, winner), (UNIFORM, uniform), (NATURAL, natural))}
    res = SearchResult(domains, proxies, fits, chosen, winner, uniform, natural, predicted, target.name, target.higher_is_better)
    log("regression: " + ", ".join(f"{f.name} rho {f.rho:.3f} MAE {f.mae:.4f}" for f in fits) + f"; using {chosen.name}")

    if (ms.validate_.enabled if validate is None else validate):
        v = ms.validate_
        vcur = [mix_curriculum(base, n, weights_dict(domains, w, evaluated, 4))
                for n, w in ((WINNER, winner), (UNIFORM, uniform), (NATURAL, natural))]
        vexp = variant(exp, out / "validate", v.preset, v.tokens or exp.train.tokens, v.seeds, vcur, UNIFORM)
        share_prepared(out / "proxies", out / "validate")
        log(f"validation: {WINNER}, {UNIFORM} and {NATURAL} at preset {v.preset}, {vexp.train.tokens:,} tokens, seeds {v.seeds}")
        run_ablation(vexp, executor, workers, on_done=on_validation, log=log)
        vals = {c.name: [target.value(run_dir(vexp, c.name, s), final_metrics(run_dir(vexp, c.name, s))) for s in v.seeds]
                for c in vcur}
        losses = {n: [sign * x for x in xs] for n, xs in vals.items()}
        res.validation = {"preset": v.preset, "tokens": vexp.train.tokens, "seeds": v.seeds, "values": vals,
                          "summary": {n: summarize(xs) for n, xs in vals.items()},
                          "verdicts": {b: verdict(losses[WINNER], losses[b]) for b in (UNIFORM, NATURAL)},
                          "report": out / "validate" / "report.md"}
    res.paths = write_outputs(exp, res)
    return res


def winner_toml(base: CurriculumConfig, domains: list[str], w: np.ndarray, evaluated: list[str]) -> str:
    """The winning mixture as a [[curricula]] entry to paste into an experiment."""
    extra = {k: v for k, v in base.model_dump(exclude_defaults=True).items() if k not in ("name", "mixture")}
    weights = weights_dict(domains, w, evaluated, 4)
    lines = ["[[curricula]]", f'name = "{WINNER}"']
    for k, v in extra.items():
        lines.append(f"{k} = " + (f'"{v}"' if isinstance(v, str) else repr(v).lower() if isinstance(v, bool) else repr(v)))
    lines.append("mixture = [{ until = 1.0, weights = { " + ", ".join(f"{_key(n)} = {x:.4f}" for n, x in weights.items()) + " } }]")
    return "\n".join(lines) + "\n"


def _key(name: str) -> str:
    return name if name.replace("_", "").replace("-", "").isalnum() else f'"{name}"'


def write_outputs(exp: Experiment, res: SearchResult) -> dict[str, Path]:
    out = exp.out_dir
    ms = exp.mixsearch
    cols: dict[str, list] = {"proxy": [p["proxy"] for p in res.proxies]}
    for j, d in enumerate(res.domains):
        cols[f"weight_{d}"] = [float(p["weights"][j]) for p in res.proxies]
    cols["target"] = [p["target"] for p in res.proxies]
    for f in res.fits:
        cols[f"oof_{f.name}"] = [(-x if res.higher_is_better else x) for x in f.oof.tolist()]
    for m in sorted({m for p in res.proxies for m in p["metrics"]}):
        cols[m.replace("/", "_")] = [p["metrics"].get(m) for p in res.proxies]
    tmp = out / ".mixture.parquet.tmp"
    pq.write_table(pa.table(cols), tmp, compression="zstd")
    tmp.replace(out / "mixture.parquet")
    plot = plot_predicted(res, out / "predicted_vs_observed.png")
    evaluated = list(make_target(ms.target, list(exp.sources())).corpora)
    toml = winner_toml(base_curriculum(exp), res.domains, res.winner, evaluated)
    (out / "winner.toml").write_text(toml)
    (out / "report.md").write_text(report_markdown(exp, res, plot, toml))
    return {"report": out / "report.md", "mixture": out / "mixture.parquet", "plot": plot, "winner": out / "winner.toml"}


def _f(x: float, d: int = 4) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{d}f}"


def report_markdown(exp: Experiment, res: SearchResult, plot: Path, toml: str) -> str:
    ms = exp.mixsearch
    better = "higher" if res.higher_is_better else "lower"
    md = [f"# Mixture search: {exp.name}", "",
          f"Domains: {', '.join(f'`{d}`' for d in res.domains)}. Target: **{res.target_name}** ({better} is better). "
          f"{len(res.proxies)} proxies at preset `{ms.preset}`, {ms.tokens:,} tokens each, seed {ms.seed}; prior "
          f"Dirichlet(concentration {ms.concentration:g} per domain, centred on the {ms.center} mixture)"
          + (", bounds " + ", ".join(f"{k} [{v[0]:g}, {v[1]:g}]" for k, v in ms.bounds.items()) if ms.bounds else "") + ".", "",
          "## Regression (held-out, %d-fold cross-validation)" % ms.folds, "",
          "| model | Spearman rho | MAE | used |", "|---|---|---|---|"]
    md += [f"| {f.name} | {_f(f.rho, 3)} | {_f(f.mae)} | {'yes' if f is res.chosen else ''} |" for f in res.fits]
    md += ["", f"The {res.chosen.name} model ranked {ms.candidates:,} mixtures drawn from the prior; the winner is the mean "
           f"of its top {ms.top}.", "", "## Mixtures", "",
           "| mixture | " + " | ".join(res.domains) + " | predicted target |", "|---|" + "---|" * (len(res.domains) + 1)]
    for n, w in ((WINNER, res.winner), (UNIFORM, res.uniform), (NATURAL, res.natural)):
        md.append(f"| {n} | " + " | ".join(f"{x:.3f}" for x in w) + f" | {_f(res.predicted[n])} |")
    best = max if res.higher_is_better else min
    bp = best(res.proxies, key=lambda p: p["target"])
    md += ["", f"Best proxy observed: {bp['proxy']} ({', '.join(f'{d} {x:.3f}' for d, x in zip(res.domains, bp['weights']))}), "
           f"target {_f(bp['target'])}.", ""]
    v = res.validation
    if v:
        md += [f"## Validation at preset `{v['preset']}` ({v['tokens']:,} tokens, seeds {', '.join(map(str, v['seeds']))})", ""]
        if len(v["seeds"]) < 3:
            md += [f"**Only {len(v['seeds'])} seeds: the intervals are wide and the verdicts indicative.**", ""]
        md += ["| mixture | seeds | target mean | std | 95% CI |", "|---|---|---|---|---|"]
        for n, s in v["summary"].items():
            md.append(f"| {n} | {s['n']} | {_f(s['mean'])} | {_f(s['std'])} | [{_f(s['lo'])}, {_f(s['hi'])}] |")
        md.append("")
        for b, (word, p) in v["verdicts"].items():
            ptxt = f", Welch's t-test p = {p:.3g}" if not math.isnan(p) else ""
            md.append(f"- **{WINNER}** vs {b}: **{word}** ({_f(v['summary'][WINNER]['mean'])} vs {_f(v['summary'][b]['mean'])}{ptxt})")
        md += ["", "Per-run curves and the ablation statistics of these runs: `validate/report.md`.", ""]
    md += [f"![predicted against observed target, out of fold]({plot.name})", "",
           "## The winner as a curriculum", "", "```toml", toml.rstrip(), "```", "",
           "Every proxy's weights, target and out-of-fold predictions: `mixture.parquet`, e.g.:", "", "```bash",
           query_command(f"SELECT * FROM '{exp.out_dir}/mixture.parquet' ORDER BY target"), "```", "",
           "The proxy runs: `proxies/`.", ""]
    return "\n".join(md)


def plot_predicted(res: SearchResult, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sign = -1.0 if res.higher_is_better else 1.0
    obs = np.array([p["target"] for p in res.proxies])
    fig, axes = plt.subplots(1, len(res.fits), figsize=(4.2 * len(res.fits), 4), dpi=110, squeeze=False)
    for ax, f in zip(axes[0], res.fits):
        pred = sign * f.oof
        ax.scatter(obs, pred, s=14, alpha=0.8)
        lo, hi = float(min(obs.min(), pred.min())), float(max(obs.max(), pred.max()))
        ax.plot([lo, hi], [lo, hi], color="grey", linewidth=0.8, linestyle="--")
        ax.set_title(f"{f.name}: rho {_f(f.rho, 3)}, MAE {_f(f.mae)}" + (" (used)" if f is res.chosen else ""))
        ax.set_xlabel(f"observed {res.target_name}")
        ax.set_ylabel("predicted (out of fold)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
