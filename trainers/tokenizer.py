"""A byte-level BPE tokenizer trained on the corpus with HF `tokenizers` (no unknown tokens, ever)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

EOT = "<|endoftext|>"


def train_tokenizer(texts: Iterable[str], vocab_size: int, path: str | Path | None = None) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOT], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), min_frequency=2)
    tok.train_from_iterator(list(texts), trainer)
    if path is not None:
        save_tokenizer(tok, path)
    return tok


def save_tokenizer(tok: Tokenizer, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(tok.to_str(pretty=True))
    tmp.replace(path)


def load_tokenizer(path: str | Path) -> Tokenizer:
    return Tokenizer.from_file(str(path))


def eot_id(tok: Tokenizer) -> int:
    return tok.token_to_id(EOT)


def encode_many(tok: Tokenizer, texts: Sequence[str]) -> list[np.ndarray]:
    return [np.asarray(e.ids, dtype=np.int32) for e in tok.encode_batch(list(texts), add_special_tokens=False)]
