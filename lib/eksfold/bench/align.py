"""Alignment benchmark: jackhmmer time and memory per query length, and the committed
jackhmmer-vs-MMseqs2 figures.

    eksfold bench align --lengths 50,100,200,400          jackhmmer time/memory vs query length

The research comparison of jackhmmer and MMseqs2 against databases of growing size lives
outside the package, in ``benchmarks/align`` (``python -m benchmarks.align --help`` from a
checkout); it writes ``align.csv``, ``align.json`` and ``align.png`` under
``eksfold/profiles/<profile>/``, which :func:`committed_comparison` reads for the notebooks.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from .common import format_table, parse_lengths, synthetic_sequence


def align_benchmark(lengths, database: str, cpus: int = 2, targets_fasta: str | None = None):
    """jackhmmer wall/CPU time, peak memory and MSA depth per query length.

    Queries are the real targets of ``targets_fasta`` nearest to each length (real proteins
    find real homologues), else synthetic sequences.
    """
    import pandas as pd

    from ..alignment.hmmer import Jackhmmer
    from ..alignment.msa import read_msa_sequences
    from ..target_files import read_fasta

    pool = read_fasta(targets_fasta) if targets_fasta and Path(targets_fasta).exists() else []
    rows = []
    with tempfile.TemporaryDirectory(prefix="eksfold-bench-") as tmp:
        for length in lengths:
            near = min(pool, key=lambda t: abs(t.length - length)) if pool else None
            name, seq = (near.id, near.sequence) if near else (f"synthetic-{length}", synthetic_sequence(length))
            query = Path(tmp) / f"q{length}.fasta"
            query.write_text(f">{name}\n{seq}\n")
            run = Jackhmmer(database, cpus=cpus).run(query, Path(tmp) / f"q{length}.sto")
            rows.append({"length": len(seq), "query": name, "wall_s": run.wall_s, "cpu_s": run.cpu_s,
                         "peak_rss_mb": run.peak_rss_mb,
                         "msa_depth": len(read_msa_sequences(Path(tmp) / f"q{length}.sto"))})
    return pd.DataFrame(rows)


def load_comparison(out_dir) -> tuple:
    """A comparison written by ``python -m benchmarks.align``: (``align.csv`` table, ``align.json``
    summary) from ``out_dir``."""
    import json

    import pandas as pd

    out = Path(str(out_dir))
    return pd.read_csv(out / "align.csv"), json.loads((out / "align.json").read_text())


def committed_comparison(profile: str = "cpu-2core"):
    """The committed jackhmmer-vs-MMseqs2 figures of a machine profile: (table, summary, PNG
    path) from ``profiles/<profile>/align.{csv,json,png}`` (written by ``python -m benchmarks.align``)."""
    from importlib.resources import files

    base = files("eksfold.profiles") / profile
    table, summary = load_comparison(base)
    return table, summary, str(base / "align.png")


def add_parser(bsub) -> None:
    a = bsub.add_parser("align", help="jackhmmer time and memory vs query length")
    a.add_argument("--lengths", default="50,100,200,400")
    a.add_argument("--database", default="data/db/uniprot20k.fasta")
    a.add_argument("--cpus", type=int, default=2)
    a.add_argument("--targets", default="data/cameo92/targets.fasta",
                   help="queries: the targets nearest each length")
    a.set_defaults(func=_cmd_align)


def _cmd_align(args) -> int:
    df = align_benchmark(parse_lengths(args.lengths), args.database, args.cpus, args.targets)
    print(f"alignment benchmark: jackhmmer on {args.database}, {args.cpus} CPUs")
    print(format_table(df, ["wall_s", "cpu_s", "peak_rss_mb"]))
    return 0
