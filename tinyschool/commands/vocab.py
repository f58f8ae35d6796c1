"""`tinyschool vocab build [--level child|early_reader|gre] [--aoa FILE --max-age 5]`: make a vocabulary TSV."""
from __future__ import annotations

from collections import Counter

import prompts
from corpora.errors import UserError
from generators.vocab import build_vocab, build_vocab_other, read_aoa, write_vocab
from tinyschool.ui import console, print_table

# the file each level is shipped as (prompts/vocab/<name>.tsv); the child level is the default
LEVEL_FILES = {"child": "default", "early_reader": "early_reader", "gre": "gre"}


def register(sub) -> None:
    p = sub.add_parser("vocab", help="vocabulary tools")
    vs = p.add_subparsers(dest="vocab_command", required=True, metavar="ACTION")
    b = vs.add_parser("build", help="build a vocabulary of nouns, verbs and adjectives at a reading level")
    b.add_argument("--level", default="child", choices=list(LEVEL_FILES),
                   help="child (default: everyday words of a 3-4-year-old), early_reader, gre")
    b.add_argument("--size", type=int, default=None, help="number of lemmas (default: the level's own, 1,300 for child)")
    b.add_argument("--aoa", default=None, help="age-of-acquisition norms (CSV/TSV with a word and an AoA column, "
                                                "e.g. Kuperman et al. 2012): keep only words acquired by --max-age")
    b.add_argument("--max-age", type=float, default=None, help="with --aoa: the oldest age of acquisition kept (years)")
    b.add_argument("--out", default=None, help="TSV path (default prompts/vocab/<default|early_reader|gre>.tsv in the source tree; "
                                                "prompts/vocab/<lang>.tsv for another language)")
    b.add_argument("--lang", default="en", help="language code (wordfreq: en, hi, bn, es, fr, de, ...; default en). "
                                                "Levels and --aoa are English-only; another language ranks by frequency")
    b.set_defaults(func=cmd_build)


def cmd_build(args) -> int:
    if args.size is not None and args.size <= 0:
        raise UserError("--size must be positive")
    if args.max_age is not None and args.aoa is None:
        raise UserError("--max-age needs --aoa FILE (age-of-acquisition norms)")
    aoa = None
    if args.aoa:
        try:
            aoa = read_aoa(args.aoa)
        except ValueError as e:
            raise UserError(str(e)) from None
    if args.lang != "en":
        if aoa is not None:
            raise UserError("--aoa is for English norms; leave it out with --lang")
        with console.status(f"building a {args.size or 1500}-lemma {args.lang} vocabulary (wordfreq + spaCy where installed)"):
            try:
                rows = build_vocab_other(args.lang, args.size or 1500)
            except ValueError as e:
                raise UserError(str(e)) from None
        label, default = args.lang, f"{args.lang}.tsv"
    else:
        with console.status(f"building the {args.level} vocabulary (concreteness + wordfreq + spaCy)"):
            rows = build_vocab(args.level, aoa=aoa, max_age=args.max_age, size=args.size)
        label, default = args.level, f"{LEVEL_FILES[args.level]}.tsv"
    if not rows:
        raise UserError(f"no word passed the {label} level's rules" + (f" with AoA <= {args.max_age}" if aoa else ""))
    out = write_vocab(rows, args.out or prompts.ROOT / "vocab" / default)
    by_pos = Counter(r[1] for r in rows)
    print_table(f"vocabulary {out} ({label})", ["POS", "lemmas", "examples"],
                [(p, by_pos[p], ", ".join([r[0] for r in rows if r[1] == p][:8])) for p in ("NOUN", "VERB", "ADJ", "X")
                 if by_pos[p] or p != "X"])
    return 0
