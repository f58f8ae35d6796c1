"""`tinyschool import SOURCE --out CORPUS` and `tinyschool export CORPUS --format hf|jsonl|txt --out DIR`."""
from __future__ import annotations

from contextlib import contextmanager

from corpora import Corpus
from corpora.errors import UserError
from corpora.export import default_stage, export_corpus
from corpora.importer import CODECS, DEFAULT_COMPRESSION, ReadOptions, import_corpus
from tinyschool.ui import console, err_console, print_table, progress_bar


def register(sub) -> None:
    p = sub.add_parser("import", help="import existing text (txt, JSONL, Parquet, Arrow; gz/zst) into a new corpus",
                       description="Read SOURCE (a file or a folder: Hugging Face save_to_disk output, a downloaded "
                                   "dataset repository, or any tree of .parquet/.arrow/.jsonl/.txt files, compressed or "
                                   "not) into the raw stage of a corpus, streaming. Nothing is written at --out unless "
                                   "the whole import succeeds.")
    p.add_argument("source", help="a file or a folder")
    p.add_argument("--out", required=True, help="corpus folder to create")
    p.add_argument("--format", choices=["auto", "text", "jsonl", "parquet", "arrow"], default="auto",
                   help="input format (default: from the file names, .txt/.jsonl/.json/.parquet/.arrow)")
    p.add_argument("--text-field", default="text", help="JSONL field or Parquet/Arrow column holding the text (default text)")
    p.add_argument("--id-field", help="use this field as the document id (default: a hash of file name and position)")
    p.add_argument("--split", choices=["line", "blank", "sep"], default=None,
                   help="plain text: one document per line (default), per blank-line-separated paragraph block, or "
                        "between separators (default separator <|endoftext|>, the TinyStories layout)")
    p.add_argument("--separator", help="document separator for --split sep (implies --split sep; default <|endoftext|>)")
    p.add_argument("--strip", action="store_true", help="strip whitespace around every document")
    p.add_argument("--include", action="append", help="only files whose path in SOURCE matches this glob (repeatable), "
                                                      "e.g. 'data/train-*'")
    p.add_argument("--skip-bad", action="store_true",
                   help="record a bad line or row as a failed row (with its error) and go on, instead of stopping")
    p.add_argument("--force", action="store_true", help="replace an existing corpus at --out (only once the import succeeded)")
    p.add_argument("--name", help="corpus name (default: the --out folder name)")
    p.add_argument("--license", default="unknown", help="license of the source text, for the dataset card")
    p.add_argument("--description", default="", help="one line describing the source, for the dataset card")
    p.add_argument("--shard-rows", type=int, default=100_000, help="documents per shard, at most (default 100000)")
    p.add_argument("--compression", choices=CODECS, default=DEFAULT_COMPRESSION,
                   help=f"Parquet codec of the shards (default {DEFAULT_COMPRESSION}: fastest to write, about the "
                        "input's size; zstd is ~3x smaller and takes about twice as long)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("export", help="export a corpus as a Hugging Face dataset folder, JSON lines or TinyStories text")
    p.add_argument("corpus")
    p.add_argument("--format", required=True, choices=["hf", "hf-disk", "jsonl", "txt"],
                   help="hf: data/train-*.parquet + dataset card (load_dataset); hf-disk: the save_to_disk layout "
                        "(load_from_disk); jsonl: train.jsonl; txt: train.txt, <|endoftext|>-separated")
    p.add_argument("--out", required=True, help="folder to write")
    p.add_argument("--stage", choices=["clean", "annotated", "raw"],
                   help="stage to export (default: clean, else annotated, else raw)")
    p.add_argument("--columns", help="comma-separated columns to export (hf/jsonl; default all)")
    p.add_argument("--separator", default="<|endoftext|>", help="txt: document separator (default <|endoftext|>)")
    p.add_argument("--force", action="store_true", help="replace an earlier export at --out")
    p.set_defaults(func=cmd_export)


@contextmanager
def _bytes_progress(description: str):
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=err_console) as p:
        task = p.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            p.update(task, completed=done, total=total)

        yield update


def cmd_import(args) -> int:
    split = args.split or ("sep" if args.separator else "line")
    if args.separator and split != "sep":
        raise UserError("--separator goes with --split sep")
    if args.shard_rows <= 0:
        raise UserError("--shard-rows must be positive")
    opts = ReadOptions(text_field=args.text_field, id_field=args.id_field, split=split,
                       separator=args.separator or "<|endoftext|>", strip=args.strip, skip_bad=args.skip_bad)
    with _bytes_progress(f"import {args.source}") as progress:
        stats = import_corpus(args.source, args.out, opts, fmt=None if args.format == "auto" else args.format,
                              include=args.include, name=args.name, license=args.license,
                              description=args.description, force=args.force, shard_rows=args.shard_rows,
                              compression=args.compression, progress=progress)
    if stats.status == "unchanged":
        console.print(f"import: nothing to do, {args.out} already holds this import ({stats.docs} documents); "
                      "pass --force to import again")
        return 0
    rows = [("files", stats.files), ("documents", stats.docs), ("failed rows (--skip-bad)", stats.failed),
            ("blank lines or pieces skipped", stats.skipped_blank), ("undecodable bytes replaced", stats.replaced),
            ("shards", stats.shards), ("MB read", round(stats.bytes_total / 1e6, 1)),
            ("docs/s", round(stats.docs / stats.seconds) if stats.seconds else 0), ("seconds", round(stats.seconds, 1))]
    if stats.resumed_shards:
        rows.insert(0, ("resumed after shard", stats.resumed_shards))
    print_table(f"import: {args.source} -> {args.out}", ["", "value"], rows)
    if len(stats.per_file) > 1:
        print_table("documents per file", ["file", "rows"], sorted(stats.per_file.items())[:50])
    if stats.replaced:
        console.print(f"[yellow]{stats.replaced} undecodable byte sequences were replaced by U+FFFD "
                      "(the rows say how many in meta.decode_errors)[/yellow]")
    for e in stats.errors[:10]:
        console.print(f"[yellow]failed row:[/yellow] {e}", highlight=False)
    console.print(f"\ncorpus: {args.out}  (next: tinyschool stats {args.out})")
    return 0


def cmd_export(args) -> int:
    corpus = Corpus(args.corpus)
    if corpus.exists() and (args.stage is None or corpus.shard_names(args.stage)):
        corpus.check_files(args.stage or default_stage(corpus))  # one line naming a damaged shard, before the bar
    columns = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
    with progress_bar() as p:
        task = p.add_task(f"export {args.format}", total=None)
        stats = export_corpus(args.corpus, args.format, args.out, stage=args.stage, columns=columns, force=args.force,
                              separator=args.separator,
                              progress=lambda done, total: p.update(task, completed=done, total=total))
    rows = [("stage", stats.stage), ("documents written", stats.rows), ("failed rows left out", stats.failed_skipped),
            ("dropped rows left out", stats.dropped_skipped), ("files", len(stats.files)),
            ("MB", round(stats.bytes / 1e6, 2))]
    if args.format == "txt":
        rows.append(("documents with an escaped separator", stats.escaped))
        rows.append(("blank documents left out", stats.blank_skipped))
    print_table(f"export {args.format}: {args.corpus} -> {args.out}", ["", "value"], rows)
    return 0
