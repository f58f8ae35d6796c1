"""Read a vocabulary TSV (lemma, pos, frequency) as written by `tinyschool vocab build`."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path


# English words always allowed beside a vocabulary: interjections and narrative words a children's
# story needs that are not among spaCy's stop words and not the nouns, verbs and adjectives a
# vocabulary lists. The constrained decoder lets them through and the OOV measure does not count them.
NARRATIVE_WORDS = frozenset("""
oh wow yay hooray hello hi bye goodbye okay ok yes no please sorry thanks mr mrs ms miss
suddenly finally quickly slowly softly gently happily sadly together away again outside inside
today tomorrow yesterday tonight soon later always never sometimes maybe really very too also
once upon time day one two three four five six seven eight nine ten first next then after
""".split())


@dataclass(frozen=True)
class Vocabulary:
    path: Path
    entries: tuple[tuple[str, str, float], ...]  # (lemma, POS, frequency), most frequent first

    def words(self, pos: str | None = None) -> list[str]:
        return [w for w, p, _ in self.entries if pos is None or p == pos]

    def lemmas(self) -> frozenset[str]:
        return frozenset(w for w, _, _ in self.entries)

    def __len__(self) -> int:
        return len(self.entries)


def read_vocab(path: str | Path) -> Vocabulary:
    path = Path(path)
    rows = []
    with open(path, newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        missing = {"lemma", "pos", "frequency"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: vocabulary TSV lacks columns {sorted(missing)}")
        for line_no, row in enumerate(reader, start=2):
            try:
                rows.append((row["lemma"], row["pos"], float(row["frequency"])))
            except (TypeError, ValueError):
                raise ValueError(f"{path}:{line_no}: bad frequency {row.get('frequency')!r}") from None
    return Vocabulary(path, tuple(rows))
