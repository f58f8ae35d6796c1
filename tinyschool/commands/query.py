"""`tinyschool query|stats|verify CORPUS`: read-only SQL, a summary, an integrity check."""
from __future__ import annotations

import json
import sys

from corpora import Corpus, CorpusError
from corpora.query import query_arrow
from tinyschool.stages.summary import print_stats
from tinyschool.ui import console, print_table


def register(sub) -> None:
    p = sub.add_parser("query", help="run read-only SQL over the views raw, annotated, clean")
    p.add_argument("corpus")
    p.add_argument("sql")
    p.add_argument("--format", choices=["table", "csv", "json", "parquet"], default="table")
    p.add_argument("--output", "-o", help="write to this file instead of stdout (required for parquet)")
    p.add_argument("--max-rows", type=int, default=100, help="rows shown in table format (default 100)")
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("stats", help="docs, tokens, errors, top openings and word-count quantiles")
    p.add_argument("corpus")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("verify", help="check every shard of a corpus against its manifest")
    p.add_argument("corpus")
    p.set_defaults(func=cmd_verify)


def cmd_query(args) -> int:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    table = query_arrow(Corpus(args.corpus), args.sql)
    if args.format == "parquet":
        if not args.output:
            raise CorpusError("--format parquet needs --output FILE")
        pq.write_table(table, args.output, compression="zstd")
        console.print(f"wrote {table.num_rows} rows to {args.output}")
        return 0
    out = open(args.output, "w") if args.output else sys.stdout
    try:
        if args.format == "csv":
            import io

            buf = io.BytesIO()
            pacsv.write_csv(table, buf)
            out.write(buf.getvalue().decode())
        elif args.format == "json":
            for row in table.to_pylist():
                out.write(json.dumps(row, default=str, ensure_ascii=False) + "\n")
        else:
            rows = table.slice(0, args.max_rows).to_pylist()
            print_table("", table.column_names, [[_cell(v) for v in r.values()] for r in rows])
            if table.num_rows > args.max_rows:
                console.print(f"({table.num_rows} rows, {args.max_rows} shown; use --max-rows or --format csv)")
    finally:
        if args.output:
            out.close()
    return 0


def _cell(v):
    if isinstance(v, str) and len(v) > 200:
        return v[:197] + "..."
    return v


def cmd_stats(args) -> int:
    print_stats(Corpus(args.corpus))
    return 0


def cmd_verify(args) -> int:
    corpus = Corpus(args.corpus)
    by_stage = corpus.verify_stages()
    m = corpus.manifest()
    rows = []
    for stage in ("raw", "annotated", "clean"):
        shards, complete = corpus.shard_names(stage), m["stages"].get(stage, {}).get("complete", False)
        if not shards and not complete:
            state = "not run"
        elif by_stage[stage]:
            state = f"no: {len(by_stage[stage])} damaged shard(s)"
        else:
            state = "yes" if complete else "no: unfinished"
        rows.append((stage, len(shards), corpus.count(stage), state))
    print_table(f"verify {corpus.root}", ["stage", "shards", "rows", "complete"], rows)
    problems = [p for ps in by_stage.values() for p in ps]
    if problems:
        for p in problems:
            console.print(f"[red]problem:[/red] {p}", highlight=False, soft_wrap=True)
        console.print(f"not ok: {len(problems)} problem(s) found")
        return 1
    unfinished = [r[0] for r in rows if r[3] == "no: unfinished"]
    note = f" ({', '.join(unfinished)} unfinished: re-run the command that writes it to finish)" if unfinished else ""
    console.print(f"ok: every shard matches its checksum and row count{note}", highlight=False)
    return 0
