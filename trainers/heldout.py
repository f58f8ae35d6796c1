"""Is the held-out split big enough for a stable validation loss? One line when it is not."""
from __future__ import annotations

from trainers.config import Experiment
from trainers.prepare import Prepared


def heldout_size(exp: Experiment, prep: Prepared) -> tuple[int, int]:
    """(documents, tokens) the trainer evaluates: the main corpus's held-out documents, at most `train.eval_docs`."""
    main = prep.sources["main"]
    idx = main.val_index()[: exp.train.eval_docs]
    return len(idx), int(sum(len(main.docs[i]) for i in idx))


def heldout_warning(exp: Experiment, prep: Prepared) -> str | None:
    docs, tokens = heldout_size(exp, prep)
    if docs >= exp.min_heldout_docs and tokens >= exp.min_heldout_tokens:
        return None
    return (f"held-out split too small for a stable estimate: {docs:,} documents, {tokens:,} tokens evaluated "
            f"(want >= {exp.min_heldout_docs:,} and >= {exp.min_heldout_tokens:,}); validation loss and its verdicts "
            "are noisy: use a bigger corpus, or raise `heldout` or `train.eval_docs`")
