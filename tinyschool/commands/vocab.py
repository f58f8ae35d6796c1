"""`tinyschool vocab build --size N`: make the child-level vocabulary TSV."""
from __future__ import annotations

from collections import Counter

from tinyschool.ui import console, print_table


def register(sub) -> None:
    p = sub.add_parser("vocab", help="vocabulary tools")
    vs = p.add_subparsers(dest="vocab_command", required=True, metavar="ACTION")
    b = vs.add_parser("build", help="build a vocabulary of the most frequent nouns, verbs and adjectives")
    b.add_argument("--size", type=int, default=1500, help="number of lemmas (default 1500)")
    b.add_argument("--out", default=None, help="TSV path (default prompts/vocab/default.tsv in the source tree; prompts/vocab/<lang>.tsv for another language)")
    b.add_argument("--lang", default="en", help="language code (wordfreq: en, hi, bn, es, fr, de, ...; default en)")
    b.set_defaults(func=cmd_build)


def cmd_build(args) -> int:
    import prompts
    from generators.vocab import build_vocab, write_vocab

    if args.size <= 0:
        from tinyschool.cli import UserError

        raise UserError("--size must be positive")
    lang = getattr(args, "lang", "en")
    with console.status(f"building a {args.size}-lemma vocabulary (wordfreq + spaCy, {lang})"):
        try:
            rows = build_vocab(args.size, lang=lang)
        except ValueError as e:
            from tinyschool.cli import UserError

            raise UserError(str(e)) from None
    out = write_vocab(rows, args.out or prompts.ROOT / "vocab" / ("default.tsv" if lang == "en" else f"{lang}.tsv"))
    by_pos = Counter(p for _, p, _ in rows)
    print_table(f"vocabulary {out}", ["POS", "lemmas", "examples"],
                [(p, by_pos[p], ", ".join([w for w, q, _ in rows if q == p][:8])) for p in ("NOUN", "VERB", "ADJ", "X") if by_pos[p] or p != "X"])
    return 0
