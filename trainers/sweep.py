"""Sweeps: the ablation grid crossed with model preset, token budget, tokenizer vocabulary size and
context length (`[sweep]`, any subset of the axes), and the scaling law of a size x data sweep.

Every combination of the axes is a point: the experiment with those settings in its own folder
(`<out>/<point>/`, an ordinary ablation: curricula x seeds, resumable, with its own report). Points
that share a tokenizer share the prepared data (copied, not recomputed). The sweep report compares
the points in bits per byte whenever the tokenizers differ (a loss in nats per token is not
comparable across vocabularies) and fits L(N, D) = E + A/N^alpha + B/D^beta per curriculum (and per
tokenizer and context) when there are at least two presets and two budgets; N is the number of
non-embedding parameters, D the training tokens.
"""
from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from trainers.ablate import run_ablation
from trainers.config import Experiment
from trainers.mixsearch import final_metrics
from trainers.prepare import load_prepared, share_prepared
from trainers.report import summarize
from trainers.scaling import PARAMS, ScalingFit, fit_scaling
from trainers.tokenizer import load_tokenizer
from trainers.train import run_dir

AXES = {"preset": "preset", "tokens": "tokens", "vocab_size": "vocab", "context": "ctx"}


def sweep_points(exp: Experiment) -> list[tuple[str, dict, Experiment]]:
    """(folder name, axis values, experiment) of every combination of the sweep's axes."""
    sw = exp.sweep
    axes = [a for a in AXES if getattr(sw, a)]
    out = []
    for combo in itertools.product(*[getattr(sw, a) for a in axes]):
        point = dict(zip(axes, combo))
        label = "_".join(f"{AXES[a]}-{v}" for a, v in point.items())
        d = exp.model_dump(mode="json", by_alias=True)
        d.update(out=str(exp.out_dir / label), sweep=None, mixsearch=None)
        if "preset" in point:
            d["model"] = {"preset": point["preset"]}  # the preset's own shape (no dim/n_layers overrides)
        if "tokens" in point:
            d["train"] = {**d["train"], "tokens": point["tokens"]}
        if "context" in point:
            d["train"] = {**d["train"], "context": point["context"]}
        if "vocab_size" in point:
            d["tokenizer"] = {**d["tokenizer"], "vocab_size": point["vocab_size"]}
        out.append((label, point, Experiment.model_validate(d)))
    return out


def run_sweep(exp: Experiment, executor, workers: int | None = None, on_done: Callable[[dict], None] | None = None,
              log: Callable[[str], None] = lambda s: None) -> dict:
    points = sweep_points(exp)
    log(f"sweep {exp.name}: {len(points)} points x {len(exp.curricula)} curricula x {len(exp.seeds)} seeds")
    prepared: dict[int, Path] = {}
    for label, point, pexp in points:
        key = pexp.tokenizer.vocab_size
        if key in prepared:
            share_prepared(prepared[key], pexp.out_dir)
        log(f"point {label}")
        run_ablation(pexp, executor, workers, on_done=on_done, log=log)
        prepared.setdefault(key, pexp.out_dir)
    return write_sweep_report(exp, points)


def bits_per_byte_factor(pexp: Experiment) -> float:
    """bits/byte = val_loss * factor for the point's held-out documents: the next-token predictions the
    validation counts (each document framed by end-of-text tokens) over the UTF-8 bytes of the text,
    over ln 2 (the end-of-text predictions are charged to the text's bytes)."""
    prep = load_prepared(pexp.out_dir)
    tok = load_tokenizer(prep.tokenizer_path)
    main = prep.sources["main"]
    docs = [main.docs[i] for i in main.val_index()[: pexp.train.eval_docs]]
    n_pred = sum(len(d) + 1 for d in docs)
    n_bytes = sum(len(tok.decode(d.tolist()).encode("utf-8")) for d in docs)
    return n_pred / (max(1, n_bytes) * math.log(2))


def sweep_rows(exp: Experiment, points) -> list[dict]:
    rows = []
    for label, point, pexp in points:
        factor = bits_per_byte_factor(pexp)
        for c in pexp.curricula:
            for s in pexp.seeds:
                run = run_dir(pexp, c.name, s)
                if not (run / "summary.json").exists():
                    continue
                final = final_metrics(run)
                cfg = json.loads((run / "config.json").read_text())
                m = cfg["model"]
                params = int(cfg["params"])
                bpb = final.get("val_bpb")
                rows.append({"point": label, **{a: point.get(a) for a in AXES}, "preset_name": pexp.model.preset,
                             "vocab": m["vocab_size"], "context_len": m["context"], "curriculum": c.name, "seed": s,
                             "params": params, "non_embedding_params": params - m["vocab_size"] * m["dim"],
                             "train_tokens": int(json.loads((run / "summary.json").read_text())["tokens"]),
                             "val_loss": final["val_loss"],
                             "val_bpb": bpb if bpb is not None else final["val_loss"] * factor,
                             "bpb_source": "trainer" if bpb is not None else "derived"})
    return rows


def write_sweep_report(exp: Experiment, points) -> dict:
    out = exp.out_dir
    rows = sweep_rows(exp, points)
    if not rows:
        raise FileNotFoundError(f"{out}: no finished runs in the sweep yet")
    pq.write_table(pa.Table.from_pylist(rows), out / "sweep.parquet", compression="zstd")
    use_bpb = len({r["vocab"] for r in rows}) > 1
    metric = "val_bpb" if use_bpb else "val_loss"
    unit = "bits per byte" if use_bpb else "nats per token"
    axes = [a for a in AXES if getattr(exp.sweep, a)]
    md = [f"# Sweep: {exp.name}", "",
          f"Axes: {', '.join(f'{a} {getattr(exp.sweep, a)}' for a in axes)}; crossed with curricula "
          f"{', '.join(c.name for c in exp.curricula)} and seeds {', '.join(map(str, exp.seeds))}. "
          f"Compared in **{unit}** (`{metric}`)" + (" because the tokenizers differ." if use_bpb else "; the tokenizer is the same at every point."),
          ""]
    if any(r["bpb_source"] == "derived" for r in rows):
        md += ["Bits per byte are derived here (final held-out loss x predictions / (UTF-8 bytes x ln 2) over the "
               "evaluated held-out documents) where the trainer did not log `val_bpb`.", ""]
    md += ["## Final held-out loss per point", "",
           "| point | curriculum | non-embedding params | tokens | seeds | mean | 95% CI |", "|---|---|---|---|---|---|---|"]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["point"], r["curriculum"]), []).append(r)
    for (p, c), rs in groups.items():
        s = summarize([r[metric] for r in rs])
        ci = f"[{s['lo']:.4f}, {s['hi']:.4f}]" if s["n"] > 1 else "n/a"
        md.append(f"| {p} | {c} | {rs[0]['non_embedding_params']:,} | {rs[0]['train_tokens']:,} | {s['n']} | {s['mean']:.4f} | {ci} |")
    md.append("")
    fits = scaling_fits(rows, metric, exp.sweep.bootstrap)
    if fits:
        md += ["## Scaling law L(N, D) = E + A/N^alpha + B/D^beta", "",
               "N: non-embedding parameters; D: training tokens; fitted on every run (Huber loss on log L, "
               f"Chinchilla's approach 3); 95% intervals from {exp.sweep.bootstrap} bootstrap resamples of the runs.", "",
               "| group | runs | " + " | ".join(PARAMS) + " | RMSE (log) |", "|---|---|" + "---|" * (len(PARAMS) + 1)]
        for g, (f, _) in fits.items():
            cells = [f"{getattr(f, p):.4g}" + (f" [{f.intervals[p][0]:.3g}, {f.intervals[p][1]:.3g}]" if p in f.intervals else "")
                     for p in PARAMS]
            md.append(f"| {g} | {f.n_points} | " + " | ".join(cells) + f" | {f.rmse_log:.4f} |")
        plot = plot_scaling(fits, metric, unit, out / "scaling.png")
        md += ["", f"![loss against tokens per model size, with the fitted law]({plot.name})", ""]
    else:
        md += ["No scaling fit: it needs at least two presets and two token budgets (a size x data sweep) with 6 runs.", ""]
    md += ["Per-run numbers: `sweep.parquet`; each point's ablation report: `<point>/report.md`.", ""]
    (out / "report.md").write_text("\n".join(md))
    return {"report": out / "report.md", "rows": rows, "fits": fits, "metric": metric}


def scaling_fits(rows: list[dict], metric: str, bootstrap: int = 200) -> dict[str, tuple[ScalingFit, list[dict]]]:
    """One fit per (curriculum, tokenizer, context) group that holds a size x data grid."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(f"{r['curriculum']} (vocab {r['vocab']}, context {r['context_len']})", []).append(r)
    fits = {}
    for g, rs in groups.items():
        N = [r["non_embedding_params"] for r in rs]
        D = [r["train_tokens"] for r in rs]
        if len(rs) >= 6 and len(set(N)) >= 2 and len(set(D)) >= 2:
            fits[g] = (fit_scaling(N, D, [r[metric] for r in rs], bootstrap=bootstrap), rs)
    return fits


def plot_scaling(fits: dict[str, tuple[ScalingFit, list[dict]]], metric: str, unit: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(fits), figsize=(5.5 * len(fits), 4.2), dpi=110, squeeze=False)
    for ax, (g, (f, rs)) in zip(axes[0], fits.items()):
        for N in sorted({r["non_embedding_params"] for r in rs}):
            pts = sorted((r["train_tokens"], r[metric]) for r in rs if r["non_embedding_params"] == N)
            Ds = np.array(sorted({d for d, _ in pts}))
            means = [np.mean([v for d, v in pts if d == x]) for x in Ds]
            line, = ax.plot(Ds, means, "o", label=f"N = {N:,}")
            grid = np.geomspace(Ds.min() / 1.5, Ds.max() * 1.5, 50)
            ax.plot(grid, f.predict(N, grid), "--", color=line.get_color(), linewidth=1)
        ax.set_xscale("log")
        ax.set_xlabel("training tokens D")
        ax.set_ylabel(f"final held-out loss ({unit})")
        ax.set_title(f"{g}\nE={f.E:.3f} alpha={f.alpha:.2f} beta={f.beta:.2f}", fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
