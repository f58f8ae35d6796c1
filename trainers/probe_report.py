"""Minimal-pair probes in an ablation: probe every finished run, then a BLiMP section for report.md.

Per run, `probes.parquet` gets the model's rows at its final checkpoint (and at step checkpoints,
when `[probe] probe_every` is set and the trainer kept them), the untrained model's (step 0, the
run's seed) and the n-gram baselines' (fitted once on the experiment's training split). The section
gives per curriculum the mean BLiMP accuracy over seeds with a 95% interval and a verdict against
the baseline curriculum (Welch's t-test, as the loss verdicts), the in-vocabulary accuracy, the
final bits per byte when the trainer logged it, the baselines and the paper's numbers, accuracy by
linguistics term, and `blimp.png` (accuracy against training tokens).
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from trainers.config import Experiment, ProbeConfig
from trainers.probe import (PROBES, load_run_lm, ngram_models, probe, published_rows, summarize, training_texts,
                            untrained_run_lm, vocabulary, write_probes)
from trainers.probe_suites import ProbeError, Suite, load_suite
from trainers.report import query_command, summarize as ci, verdict
from trainers.train import SNAPSHOTS

REPO = Path(__file__).resolve().parents[1]
STEP_CHECKPOINTS = SNAPSHOTS  # <run>/checkpoints/step<N>.pt: the model at step N, kept on the probe_every schedule


def default_data(suite: str) -> Path | None:
    """BLiMP where this project keeps it: ../shared/data/blimp or data/blimp, from the working directory or the repository."""
    if suite != "blimp":
        return None
    for base in (Path.cwd(), REPO):
        for rel in ("../shared/data/blimp", "data/blimp"):
            p = (base / rel).resolve()
            if p.is_dir():
                return p
    return None


def resolve_data(cfg: ProbeConfig) -> Path | None:
    if cfg.data:
        p = Path(cfg.data)
        return p if p.exists() else None
    return default_data(cfg.suite)


def step_checkpoints(run: Path, every: int) -> list[tuple[int, Path]]:
    """(step, file) of the step checkpoints on the `probe_every` schedule."""
    if every <= 0 or not (run / STEP_CHECKPOINTS).is_dir():
        return []
    out = []
    for p in (run / STEP_CHECKPOINTS).glob("step*.pt"):
        m = re.fullmatch(r"step0*(\d+)\.pt", p.name)
        if m and int(m.group(1)) % every == 0:
            out.append((int(m.group(1)), p))
    return sorted(out)


def probe_ablation(exp: Experiment, runs: list[dict], log: Callable[[str], None] = lambda s: None,
                   device: str = "cpu") -> Suite | None:
    """Probe every finished run of the ablation; None (and one line) when the suite's data is missing."""
    cfg = exp.probe
    if not cfg.enabled:
        return None
    data = resolve_data(cfg)
    if data is None:
        where = cfg.data or "../shared/data/blimp or data/blimp"
        log(f"probe: no {cfg.suite} data at {where}; skipped (set [probe] data = DIR)")
        return None
    suite = load_suite(cfg.suite, data, cfg.paradigms or None)
    log(f"probe: {cfg.suite} ({len(suite):,} pairs, {len(suite.paradigms())} paradigms) on {len(runs)} runs")
    corpus: dict[tuple, tuple] = {}  # training-split texts -> (n-gram models, vocabulary), shared by runs
    ngram_rows: dict[tuple, object] = {}
    untrained_rows: dict[int, object] = {}
    warned = False
    for r in sorted(runs, key=lambda r: (r["curriculum"], r["seed"])):
        run = Path(r["run"])
        lm = load_run_lm(run, device, cfg.batch_size)
        if _already_probed(run / PROBES, suite, lm.step):
            continue
        texts = training_texts(run)
        key = (len(texts), hash(texts[0]) if texts else 0) if texts is not None else None
        if key is not None and key not in corpus:
            log(f"probe: n-gram baselines on {len(texts):,} training documents")
            corpus[key] = (ngram_models(texts) if cfg.baselines else [], vocabulary(texts))
        ngrams, vocab = corpus.get(key, ([], None))
        parts = [probe(suite, lm, vocab=vocab)]
        steps = step_checkpoints(run, cfg.probe_every)
        if cfg.probe_every and not steps and not warned:
            log(f"probe: probe_every = {cfg.probe_every} but {run} keeps no step checkpoints "
                f"({STEP_CHECKPOINTS}/step<N>.pt); the curve has the untrained and the final point")
            warned = True
        for step, path in steps:
            if step != lm.step:
                parts.append(probe(suite, load_run_lm(run, device, cfg.batch_size, checkpoint=path), vocab=vocab))
        if cfg.baselines:
            seed = r["seed"]
            if seed not in untrained_rows:  # the same config and seed: the same untrained model in every curriculum
                untrained_rows[seed] = probe(suite, untrained_run_lm(run, device, cfg.batch_size), vocab=vocab)
            parts.append(untrained_rows[seed])
            if key is not None and ngrams:
                if key not in ngram_rows:
                    ngram_rows[key] = probe(suite, ngrams=ngrams, vocab=vocab)
                parts.append(ngram_rows[key])
        write_probes(pa.concat_tables(parts), run / PROBES)
        log(f"probe: {r['curriculum']} seed {r['seed']}: {run / PROBES}")
    return suite


def _already_probed(path: Path, suite: Suite, step: int | None) -> bool:
    if not path.exists():
        return False
    t = pq.read_table(path, columns=["suite", "scorer", "step"]).to_pylist()
    n = sum(1 for x in t if x["suite"] == suite.name and x["scorer"] == "model" and x["step"] == step)
    return n == len(suite)


def _final_bpb(run: Path) -> float | None:
    p = run / "metrics.parquet"
    if not p.exists():
        return None
    t = pq.read_table(p)
    if "val_bpb" in t.column_names:  # a column of its own
        vals = [v for v in t["val_bpb"].to_pylist() if v is not None]
        return vals[-1] if vals else None
    if "metric" not in t.column_names:
        return None
    rows = [x for x in t.filter(pc.equal(t["metric"], "val_bpb")).to_pylist()]  # a metric row, like val_loss
    return rows[-1]["value"] if rows else None


def _f(x, d=1) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{d}f}"


def blimp_section(exp: Experiment, suite: Suite | None, runs: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Markdown lines of the report's BLiMP section and the rows of its summary table (for the terminal)."""
    if suite is None:
        return [], []
    names = [c.name for c in exp.curricula]
    base = exp.baseline if exp.baseline in names else None
    summ: dict[tuple[str, int], list[dict]] = {}
    for r in runs:
        p = Path(r["run"]) / PROBES
        if p.exists():
            t = pq.read_table(p)
            t = t.filter(pc.equal(t["suite"], suite.name))
            summ[(r["curriculum"], r["seed"])] = summarize(t)
    if not summ:
        return [], []

    def overall(rows, scorer, field="accuracy", step="final"):
        sel = [x for x in rows if x["scorer"] == scorer and x["level"] == "overall"]
        if not sel:
            return None
        sel.sort(key=lambda x: -1 if x["step"] is None else x["step"])
        return sel[-1][field]

    acc = {n: [overall(summ[(n, s)], "model") for s in exp.seeds if (n, s) in summ] for n in names}
    rows, table_rows = [], []
    for n in names:
        keys = [(n, s) for s in exp.seeds if (n, s) in summ]
        a = ci([x for x in acc[n] if x is not None])
        inv = [overall(summ[k], "model", "accuracy_in_vocab") for k in keys]
        inv_pairs = [overall(summ[k], "model", "in_vocab_pairs") for k in keys]
        mean_tok = [overall(summ[k], "model", "accuracy_mean") for k in keys]
        bpb = [b for b in (_final_bpb(Path(exp.out_dir) / n / f"seed{s}") for s in exp.seeds) if b is not None]
        if base and n != base:
            v, pv = verdict([-x for x in acc[n] if x is not None], [-x for x in acc[base] if x is not None])
            v += f" (p = {pv:.3g})" if not math.isnan(pv) else ""
        else:
            v = "baseline" if n == base else "no baseline"
        inv_txt = f"{_f(_nanmean(inv))} ({int(np.mean([p for p in inv_pairs if p is not None])) if any(p is not None for p in inv_pairs) else 0:,} pairs)"
        row = [n, str(a["n"]), _f(a["mean"]), _f(a["std"]), f"[{_f(a['lo'])}, {_f(a['hi'])}]", v, inv_txt,
               _f(_nanmean(mean_tok)), _f(float(np.mean(bpb)), 4) if bpb else "n/a"]
        rows.append(row)
        table_rows.append(row)
    md = [f"## BLiMP: grammatical minimal pairs ({suite.name})", "",
          f"{len(suite):,} pairs in {len(suite.paradigms())} paradigms from `{suite.source}`, scored at each run's final "
          "checkpoint. A pair is passed when the model gives the grammatical sentence the higher total log-probability "
          "(BOS prepended; a tie counts half). Accuracy in percent, mean over paradigms; chance is 50.", "",
          f"| curriculum | seeds | BLiMP mean | std | 95% CI | verdict vs {exp.baseline} | in-vocabulary pairs | per-token mean | final val bpb |",
          "|---|---|---|---|---|---|---|---|---|"]
    md += ["| " + " | ".join(r) + " |" for r in rows]
    md += ["", "In-vocabulary: accuracy on the pairs whose every word occurs in the training split (pooled). "
           "Per-token mean: the pass rate when sentences are compared by mean log-probability per token. "
           "Bits per byte: the held-out loss in bits per UTF-8 byte (comparable across tokenizers).", ""]
    # baselines: the untrained model (mean over seeds), the n-grams (one training split), the paper's numbers
    any_run = next(iter(summ.values()))
    bl = []
    untrained = [overall(v, "untrained") for v in summ.values()]
    untrained = [x for x in untrained if x is not None]
    if untrained:
        inv_u = _nanmean([overall(v, "untrained", "accuracy_in_vocab") for v in summ.values()])
        bl.append(["untrained model (step 0)", _f(float(np.mean(untrained))), _f(inv_u)])
    for sc in ("unigram", "bigram", "5-gram"):
        if overall(any_run, sc) is not None:
            bl.append([f"{sc} (interpolated Kneser-Ney, training split)", _f(overall(any_run, sc)),
                       _f(overall(any_run, sc, "accuracy_in_vocab"))])
    for r in published_rows(suite):
        if r["level"] == "overall":
            bl.append([f"{r['scorer']} (Warstadt et al. 2020, published)", _f(r["accuracy"]), "n/a"])
    if bl:
        md += ["### Baselines", "", "| baseline | BLiMP mean | in-vocabulary |", "|---|---|---|"]
        md += ["| " + " | ".join(b) + " |" for b in bl] + [""]
    # by linguistics term: curricula (mean over seeds) beside the 5-gram and the paper's GPT-2
    terms = [x["group"] for x in any_run if x["level"] == "linguistics_term" and x["scorer"] == "model"]
    terms = list(dict.fromkeys(terms))
    if len(terms) > 1:
        pub = {(r["scorer"], r["group"]): r["accuracy"] for r in published_rows(suite) if r["level"] == "linguistics_term"}
        extra = [sc for sc in ("5-gram",) if overall(any_run, sc) is not None]
        cols = names + extra + (["paper GPT-2"] if any(k[0] == "paper GPT-2" for k in pub) else [])
        md += ["### By linguistics term", "", "| term | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        for t in terms:
            vals = []
            for n in names:
                v = [_group(summ[(n, s)], "model", t) for s in exp.seeds if (n, s) in summ]
                vals.append(_f(_nanmean(v)))
            vals += [_f(_group(any_run, sc, t)) for sc in extra]
            if "paper GPT-2" in cols:
                vals.append(_f(pub.get(("paper GPT-2", t))))
            md.append(f"| {t} | " + " | ".join(vals) + " |")
        md.append("")
    png = plot_blimp(exp, summ, any_run, exp.out_dir / "blimp.png")
    md += [f"![BLiMP accuracy against training tokens]({png.name})", "",
           "Per pair and scorer: `*/seed*/probes.parquet`, e.g.:", "", "```bash",
           query_command(f"SELECT scorer, paradigm, avg(correct) FROM '{exp.out_dir}/*/seed*/probes.parquet' GROUP BY ALL ORDER BY ALL"),
           "```", ""]
    return md, table_rows


def _nanmean(v) -> float:
    v = [x for x in v if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(v)) if v else math.nan


def _group(rows, scorer, group, level="linguistics_term"):
    sel = [x for x in rows if x["scorer"] == scorer and x["level"] == level and x["group"] == group]
    if not sel:
        return None
    sel.sort(key=lambda x: -1 if x["step"] is None else x["step"])
    return sel[-1]["accuracy"]


def plot_blimp(exp: Experiment, summ: dict, any_run: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for c in exp.curricula:
        pts: dict[int, list[float]] = {}
        for s in exp.seeds:
            for x in summ.get((c.name, s), []):
                if x["level"] == "overall" and x["scorer"] in ("model", "untrained") and x["tokens"] is not None:
                    pts.setdefault(int(x["tokens"]), []).append(x["accuracy"])
        if pts:
            xs = sorted(pts)
            ax.plot(xs, [np.mean(pts[t]) for t in xs], marker="o", label=f"{c.name} (mean over seeds)")
    for sc, style in (("unigram", ":"), ("bigram", "-."), ("5-gram", "--")):
        v = next((x["accuracy"] for x in any_run if x["scorer"] == sc and x["level"] == "overall"), None)
        if v is not None:
            ax.axhline(v, color="grey", linestyle=style, linewidth=0.9, label=f"{sc} {v:.1f}")
    ax.axhline(50, color="black", linewidth=0.5, alpha=0.5)
    ax.set_xlabel("training tokens")
    ax.set_ylabel("BLiMP accuracy (%)")
    ax.set_title(f"{exp.name}: BLiMP accuracy (step 0 = untrained)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def add_to_report(report: Path, section: list[str], warning: str | None) -> None:
    """Insert the held-out warning (in red) under the title and append the BLiMP section; idempotent."""
    text = report.read_text()
    marker = "## BLiMP"
    if marker in text:
        head, _, rest = text.partition(marker)
        nxt = rest.find("\n## ", 1)
        text = head.rstrip() + "\n" + (rest[nxt:] if nxt >= 0 else "")
    text = re.sub(r"\n<p style=\"color:red\">.*?</p>\n", "\n", text)
    if warning:
        lines = text.split("\n", 1)
        text = lines[0] + f"\n\n<p style=\"color:red\"><b>Warning: {warning}.</b></p>\n" + (lines[1] if len(lines) > 1 else "")
    if section:
        judge = "## Judge scores"
        body = "\n".join(section).rstrip() + "\n"
        if judge in text:
            i = text.index(judge)
            text = text[:i] + body + "\n" + text[i:]
        else:
            text = text.rstrip() + "\n\n" + body
    report.write_text(text)


__all__ = ["ProbeError", "add_to_report", "blimp_section", "default_data", "probe_ablation", "resolve_data"]


# one paradigm per linguistics term (12,000 pairs): what `target = "probe:blimp"` of a mixture search scores
BLIMP_TARGET_PARADIGMS = ["anaphor_number_agreement", "causative", "principle_A_case_1", "existential_there_object_raising",
                          "determiner_noun_agreement_1", "ellipsis_n_bar_1", "wh_questions_object_gap",
                          "irregular_past_participle_verbs", "adjunct_island", "npi_present_1",
                          "existential_there_quantifiers_1", "regular_plural_subject_verb_agreement_1"]
_TARGET_SUITES: dict[Path, Suite] = {}


def blimp_score(run: Path) -> float:
    """BLiMP accuracy (percent, the mean over paradigms) of a run's final model on one paradigm per
    linguistics term, BLiMP read from ../shared/data/blimp or data/blimp: the mixture search's
    `target = "probe:blimp"` (higher is better)."""
    data = resolve_data(ProbeConfig())
    if data is None:
        raise ProbeError("target probe:blimp: no BLiMP data (../shared/data/blimp or data/blimp)")
    if data not in _TARGET_SUITES:
        _TARGET_SUITES[data] = load_suite("blimp", data, BLIMP_TARGET_PARADIGMS)
    rows = summarize(probe(_TARGET_SUITES[data], load_run_lm(Path(run))))
    return float(next(r["accuracy"] for r in rows if r["level"] == "overall"))

