"""The ablation report: statistics per curriculum over seeds, a verdict against the baseline, a plot.

Everything is read back from the runs' metrics.parquet files with DuckDB, so the report can be
rebuilt at any time (and the same numbers can be queried by hand).
"""
from __future__ import annotations

import math
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from trainers.config import Experiment
from trainers.prepare import bucket_names

ALPHA = 0.05


def load_metrics(exp: Experiment) -> pa.Table:
    files = sorted(str(p) for c in exp.curricula for s in exp.seeds
                   for p in [exp.out_dir / c.name / f"seed{s}" / "metrics.parquet"] if p.exists())
    if not files:
        raise FileNotFoundError(f"{exp.out_dir}: no runs with metrics yet")
    con = duckdb.connect()
    try:
        lst = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
        return con.sql(f"SELECT * FROM read_parquet({lst}, union_by_name = true)").to_arrow_table()
    finally:
        con.close()


def summarize(values: list[float]) -> dict:
    a = np.asarray([v for v in values if v is not None], dtype=float)
    n = len(a)
    mean = float(a.mean()) if n else math.nan
    std = float(a.std(ddof=1)) if n > 1 else math.nan
    from scipy import stats as sst  # here, not at the top: 1-2 s of every command's start otherwise

    half = float(sst.t.ppf(0.975, n - 1) * std / math.sqrt(n)) if n > 1 else math.nan
    return {"n": n, "mean": mean, "std": std, "lo": mean - half, "hi": mean + half}


def verdict(cur: list[float], base: list[float]) -> tuple[str, float]:
    """better / worse / no significant difference, by Welch's t-test on final validation loss."""
    if len(cur) < 2 or len(base) < 2:
        return "not enough seeds for a test (need 2 per curriculum)", math.nan
    if np.std(cur) == 0 and np.std(base) == 0:
        return ("no significant difference" if np.mean(cur) == np.mean(base) else
                ("better" if np.mean(cur) < np.mean(base) else "worse")), math.nan
    from scipy import stats as sst

    p = float(sst.ttest_ind(cur, base, equal_var=False).pvalue)
    if p < ALPHA:
        return ("better" if np.mean(cur) < np.mean(base) else "worse"), p
    return "no significant difference", p


def per_run(table: pa.Table) -> dict[tuple[str, int], dict]:
    runs: dict[tuple[str, int], dict] = {}
    for r in table.filter(pc.starts_with(table["metric"], "val_loss")).sort_by([("step", "ascending")]).to_pylist():
        d = runs.setdefault((r["curriculum"], r["seed"]), {"curve": [], "buckets": {}})
        if r["metric"] == "val_loss":
            d["curve"].append((r["tokens"], r["value"]))
        else:
            d["buckets"][r["metric"].split("/", 1)[1]] = r["value"]  # last value wins: the final one
    return runs


def diverged_at(curve: list[tuple[int, float]]) -> int | None:
    """Tokens at the first non-finite (NaN or infinite) validation loss of a run, None if there is none."""
    for tokens, v in curve:
        if v is None or not math.isfinite(v):
            return tokens
    return None


def tokens_to_target(curve: list[tuple[int, float]], target: float) -> int | None:
    for tokens, v in curve:
        if v <= target:
            return tokens
    return None


def _fmt(s: dict, digits: int = 4) -> tuple[str, str, str]:
    f = lambda x: "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"  # noqa: E731
    return f(s["mean"]), f(s["std"]), f"[{f(s['lo'])}, {f(s['hi'])}]"


def write_report(exp: Experiment) -> dict:
    """Write report.md, loss.png and summary.parquet in the experiment folder; return the figures."""
    out = exp.out_dir
    table = load_metrics(exp)
    runs = per_run(table)
    names = [c.name for c in exp.curricula]
    # a diverged run (NaN/inf loss) is reported as such and left out of every mean, interval and test
    diverged = {k: diverged_at(r["curve"]) for k, r in runs.items() if r["curve"] and diverged_at(r["curve"]) is not None}
    ok = {k: r for k, r in runs.items() if k not in diverged}
    finals = {n: [ok[(n, s)]["curve"][-1][1] for s in exp.seeds if (n, s) in ok and ok[(n, s)]["curve"]] for n in names}
    bests = {n: [min(v for _, v in ok[(n, s)]["curve"]) for s in exp.seeds if (n, s) in ok and ok[(n, s)]["curve"]] for n in names}
    baseline = exp.baseline if exp.baseline in names else None
    target = exp.target_loss
    if target is None:
        pooled = [v for f in finals.values() for v in f]
        target = float(np.mean(finals[baseline])) if baseline and finals[baseline] else (float(np.mean(pooled)) if pooled else math.nan)
    rows, summary_rows, verdicts = [], [], {}
    for n in names:
        fs, bs = summarize(finals[n]), summarize(bests[n])
        reach = [tokens_to_target(ok[(n, s)]["curve"], target) for s in exp.seeds if (n, s) in ok]
        hit = [t for t in reach if t is not None]
        reach_txt = f"{np.mean(hit):,.0f} ({len(hit)}/{len(reach)} seeds)" if hit else f"not reached (0/{len(reach)})"
        if baseline and n != baseline:
            v, p = verdict(finals[n], finals[baseline])
        else:
            v, p = ("baseline" if n == baseline else "no baseline"), math.nan
        verdicts[n] = (v, p)
        n_div = sum(1 for s in exp.seeds if (n, s) in diverged)
        rows.append([n, str(fs["n"]) + (f" (+{n_div} diverged)" if n_div else ""), *_fmt(fs), *_fmt(bs), reach_txt])
        for s in exp.seeds:
            if (n, s) in runs and runs[(n, s)]["curve"]:
                c = runs[(n, s)]["curve"]
                div = diverged.get((n, s))
                finite = [v for _, v in c if v is not None and math.isfinite(v)]
                summary_rows.append({"curriculum": n, "seed": s, "final_val_loss": c[-1][1],
                                     "best_val_loss": min(finite) if finite else None,
                                     "tokens": c[-1][0], "tokens_to_target": None if div is not None else tokens_to_target(c, target),
                                     "diverged": div is not None, "diverged_at_tokens": div,
                                     **{f"final_val_loss_{k}": v for k, v in runs[(n, s)]["buckets"].items()}})
    pq.write_table(pa.Table.from_pylist(summary_rows), out / "summary.parquet", compression="zstd")
    plot = plot_curves(exp, ok, target, out / "loss.png")

    tokens_budget = max((r["tokens"] for r in summary_rows), default=0)
    md = [f"# Curriculum ablation: {exp.name}", "",
          *([exp.description.strip(), ""] if exp.description.strip() else []),
          f"Corpus `{exp.corpus}`; model preset `{exp.model.preset}`; {tokens_budget:,} training tokens per run "
          f"(equal budget); seeds {', '.join(map(str, exp.seeds))}; {_validation_on(exp)}.", ""]
    if len(exp.seeds) < 3:
        md += [f"**Only {len(exp.seeds)} seeds: the intervals are wide and the verdicts indicative.** Use 3 or more for a claim.", ""]
    md += ["## Validation loss per curriculum", "",
           "| curriculum | seeds | final mean | final std | final 95% CI | best mean | best std | best 95% CI | tokens to reach target |",
           "|---|---|---|---|---|---|---|---|---|"]
    md += ["| " + " | ".join(r) + " |" for r in rows]
    if diverged:
        which = ", ".join(f"{n} seed {s} (at {t:,} tokens)" for (n, s), t in sorted(diverged.items()))
        md += ["", f"**Diverged** (a NaN or infinite validation loss): {which}. Left out of the means, standard "
               "deviations, intervals, target and verdicts above; their metrics are in `summary.parquet` (`diverged`)."]
    md += ["", f"Target loss: {target:.4f} ({'from the experiment' if exp.target_loss is not None else 'the baseline' + chr(39) + 's mean final loss' if baseline else 'mean final loss'}). "
           "95% intervals use Student's t over seeds.", ""]
    seen = {k for r in runs.values() for k in r["buckets"]}
    bucket_names = [b for b in _bucket_order(exp) if b in seen] + sorted(k for k in seen if k not in _bucket_order(exp))
    if bucket_names:
        md += [f"## Final validation loss by difficulty bucket ({exp.scorer})", "",
               "| curriculum | " + " | ".join(bucket_names) + " |", "|---|" + "---|" * len(bucket_names)]
        for n in names:
            vals = [[ok[(n, s)]["buckets"].get(b, np.nan) for s in exp.seeds if (n, s) in ok] for b in bucket_names]
            md.append(f"| {n} | " + " | ".join(f"{np.mean(v):.4f}" if v else "n/a" for v in vals) + " |")
        md.append("")
    md += ["## Verdicts", ""]
    if baseline is None:
        md.append(f"No curriculum is named {exp.baseline!r} (the baseline), so there is nothing to compare against.")
    for n in names:
        if n == baseline:
            continue
        v, p = verdicts[n]
        ptxt = f", Welch's t-test p = {p:.3g}" if not math.isnan(p) else ""
        if baseline:
            mean = lambda xs: f"{np.mean(xs):.4f}" if xs else "n/a"  # noqa: E731
            md.append(f"- **{n}** vs {baseline}: **{v}** (final loss {mean(finals[n])} vs {mean(finals[baseline])}{ptxt})")
    md += ["", f"![validation loss against tokens]({plot.name})", "",
           "Per-run numbers: `summary.parquet`; every logged metric: `*/seed*/metrics.parquet`. Query them with DuckDB "
           "from Python, e.g.:", "", "```bash",
           query_command(f"SELECT curriculum, seed, min(value) FROM '{out}/*/seed*/metrics.parquet' "
                         "WHERE metric = 'val_loss' GROUP BY ALL ORDER BY ALL"), "```", ""]
    (out / "report.md").write_text("\n".join(md))
    return {"report": out / "report.md", "plot": plot, "target": target, "rows": rows,
            "verdicts": {n: v for n, (v, _) in verdicts.items()}}


def query_command(sql: str) -> str:
    """A shell command that runs `sql` (no double quotes in it) with what the install brings: DuckDB's
    Python package, not its command-line tool."""
    return f"python -c \"import duckdb; duckdb.sql(\\\"{sql}\\\").show()\""


def _validation_on(exp: Experiment) -> str:
    """What the validation loss is measured on, as the trainer chose it (prepare's split)."""
    if exp.heldout_from:
        return (f"validation on the fixed held-out set `{exp.heldout_from}` (every corpus document trains), "
                f"at most {exp.train.eval_docs:,} documents evaluated")
    return f"validation on {exp.heldout:.0%} of the corpus's documents held out, at most {exp.train.eval_docs:,} evaluated"


def _bucket_order(exp: Experiment) -> list[str]:
    return bucket_names(exp.buckets)


def plot_curves(exp: Experiment, runs: dict, target: float, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for c in exp.curricula:
        curves = [runs[(c.name, s)]["curve"] for s in exp.seeds if (c.name, s) in runs]
        if not curves:
            continue
        n = min(len(cv) for cv in curves)
        x = np.array([t for t, _ in curves[0][:n]])
        y = np.array([[v for _, v in cv[:n]] for cv in curves])
        mean = y.mean(0)
        line, = ax.plot(x, mean, label=f"{c.name} (n={len(curves)})")
        if len(curves) > 1:
            sd = y.std(0, ddof=1)
            ax.fill_between(x, mean - sd, mean + sd, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.axhline(target, color="grey", linestyle="--", linewidth=0.8, label=f"target {target:.3f}")
    ax.set_xlabel("training tokens")
    ax.set_ylabel("validation loss (nats/token)")
    ax.set_title(f"{exp.name}: mean over seeds, band = ±1 std")
    vals = [v for r in runs.values() for _, v in r["curve"][1:]] or [target]
    ax.set_ylim(min(vals) - 0.05 * (max(vals) - min(vals) + 1e-9), np.percentile(vals, 98) + 0.1)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
