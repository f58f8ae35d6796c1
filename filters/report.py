"""The cleaning report: kept/dropped counts by reason, and a histogram PNG of readability grade and
word count of kept vs dropped documents."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpora import Corpus


def reason_rows(stats) -> list[tuple[str, int, float]]:
    """(outcome, docs, % of all docs), kept first, then reasons by count."""
    total = max(stats.docs, 1)
    rows = [("kept", stats.kept, round(100 * stats.kept / total, 2))]
    for reason, n in sorted(stats.dropped.items(), key=lambda kv: (-kv[1], kv[0])):
        rows.append((f"dropped: {reason}", n, round(100 * n / total, 2)))
    return rows


def histogram_png(corpus: Corpus, out_dir: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = ["keep", "flesch_kincaid_grade", "word_count"]
    parts = []
    for _, t in corpus.iter_stage("annotated", columns=cols):
        parts.append(t.select([c for c in cols if c in t.column_names]))
    t = pa.concat_tables(parts) if parts else pa.table({c: [] for c in cols})
    keep = np.array(t.column("keep").to_pylist(), dtype=bool) if "keep" in t.column_names else np.zeros(0, bool)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, col, label in ((axes[0], "flesch_kincaid_grade", "Flesch-Kincaid grade"), (axes[1], "word_count", "words")):
        if col not in t.column_names:
            ax.set_title(f"{label}: not computed")
            continue
        v = pc.fill_null(t.column(col).cast(pa.float64()), np.nan).to_numpy(zero_copy_only=False)
        ok = ~np.isnan(v)
        data = [v[ok & keep], v[ok & ~keep]]
        allv = np.concatenate(data)
        if len(allv):
            lo, hi = np.percentile(allv, [0.5, 99.5])
            bins = np.linspace(lo, hi if hi > lo else lo + 1, 40)
            ax.hist([np.clip(x, bins[0], bins[-1]) for x in data], bins=bins, label=[f"kept ({len(data[0])})", f"dropped ({len(data[1])})"],
                    color=["tab:green", "tab:red"], alpha=0.7, histtype="stepfilled", stacked=False)
            ax.legend()
        ax.set_xlabel(label)
        ax.set_ylabel("documents")
        ax.set_title(f"{label}, kept vs dropped")
    fig.suptitle(f"annotate: {corpus.root}")
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "annotate_histogram.png"
    tmp = path.with_name(".annotate_histogram.tmp.png")
    fig.savefig(tmp, dpi=100, metadata={"Software": None})
    plt.close(fig)
    tmp.replace(path)
    return path
