"""Preparing MMseqs2 databases: the plain sequence layout and ColabFold's cluster-profile layout.

ColabFold's UniRef30 / environmental databases are *expandable profile databases*: one profile
per sequence cluster (``DB``), the member sequences (``DB_seq``), the cluster-to-member
alignments (``DB_aln``) that ``expandaln`` follows, and headers. :func:`build_colabfold` makes
the same layout from any FASTA file (cluster -> align members to representatives -> profiles ->
consensus), so the real search path runs on a small database; on the cluster the data-prep Job
downloads ColabFold's ready-made databases and only runs :func:`index_commands` on them.

Every builder writes into a scratch folder beside the destination and moves the files in last,
so an interrupted build never leaves a database that looks complete.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from .tools import ToolRun, run_tool
from ..errors import ConfigError
from .mmseqs import db_exists


# The parts of one database: the data itself, headers, and the colabfold layout's siblings,
# each with its .index/.dbtype/.lookup/.source/.idx files and split data files (.0, .1, ...).
_PART = re.compile(r"^(_(h|seq|seq_h|aln|consensus|consensus_h))?(\.[\w.]+)?$")


def database_files(prefix: str | Path) -> list[Path]:
    """Every file of the MMseqs2 database ``prefix`` (``prefix``, ``prefix.index``, ``prefix_h``,
    and for the colabfold layout ``prefix_seq``, ``prefix_aln``, ``prefix_consensus``...).

    Another database whose name merely starts with ``prefix`` (``uniprot20k_cf`` beside
    ``uniprot20k``) is not included.
    """
    prefix = Path(prefix)
    return sorted(p for p in prefix.parent.glob(prefix.name + "*")
                  if p.is_file() and _PART.match(p.name[len(prefix.name):]))


def _move_in(tmp: Path, prefix: Path) -> None:
    # MMseqs2 links shared parts (headers, lookup) with absolute symlinks into the scratch
    # folder: re-create them relative, so the database can move (FSx, a container image).
    for path in [p for p in tmp.glob(prefix.name + "*") if p.is_symlink()]:
        dest = prefix.parent / path.name
        dest.unlink(missing_ok=True)
        dest.symlink_to(Path(os.readlink(path)).name)
        path.unlink()
    # Index files last: a reader checks .dbtype/.index, so those mark a database complete.
    files = [p for p in tmp.glob(prefix.name + "*") if p.is_file()]
    for path in sorted(files, key=lambda p: p.suffix in (".index", ".dbtype")):
        os.replace(path, prefix.parent / path.name)


def build_plain(fasta: str | Path, prefix: str | Path, binary: str = "mmseqs") -> list[ToolRun]:
    """``createdb`` of ``fasta`` at ``prefix`` (skipped when it exists)."""
    prefix = Path(prefix)
    if db_exists(prefix):
        return []
    if not Path(fasta).is_file():
        raise ConfigError(f"{fasta} not found: build the sequence database first (make setup)")
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=prefix.parent) as tmp:
        runs = [run_tool("mmseqs createdb", [binary, "createdb", str(fasta),
                                             f"{tmp}/{prefix.name}", "-v", "1"])]
        _move_in(Path(tmp), prefix)
    return runs


def build_colabfold(fasta: str | Path, prefix: str | Path, min_seq_id: float = 0.3,
                    coverage: float = 0.8, cpus: int = 2, binary: str = "mmseqs") -> list[ToolRun]:
    """An expandable cluster-profile database (ColabFold's layout) from ``fasta``.

    Parameters
    ----------
    min_seq_id, coverage : float
        Clustering thresholds; UniRef30 clusters at 30 % identity.

    Returns the measured steps (empty when the database already exists).
    """
    prefix = Path(prefix)
    if all(db_exists(f"{prefix}{s}") for s in ("", "_seq", "_aln", "_consensus")):
        return []
    if not Path(fasta).is_file():
        raise ConfigError(f"{fasta} not found: build the sequence database first (make setup)")
    prefix.parent.mkdir(parents=True, exist_ok=True)
    c = ["--threads", str(cpus), "-v", "1"]
    with tempfile.TemporaryDirectory(prefix=".build-", dir=prefix.parent) as tmp:
        p = f"{tmp}/{prefix.name}"
        steps = [
            ("createdb", [binary, "createdb", str(fasta), f"{p}_seq", "-v", "1"]),
            ("cluster", [binary, "cluster", f"{p}_seq", f"{tmp}/clu", f"{tmp}/work",
                         "--min-seq-id", str(min_seq_id), "-c", str(coverage), *c]),
            # Representative -> member alignments: what expandaln follows to the members.
            ("align", [binary, "align", f"{p}_seq", f"{p}_seq", f"{tmp}/clu", f"{p}_aln",
                       "-a", "-e", "inf", *c]),
            ("result2profile", [binary, "result2profile", f"{p}_seq", f"{p}_seq", f"{p}_aln", p,
                                *c]),
            ("profile2consensus", [binary, "profile2consensus", p, f"{p}_consensus", *c]),
        ]
        runs = [run_tool(f"mmseqs {name}", argv) for name, argv in steps]
        _move_in(Path(tmp), prefix)   # the clustering scratch stays behind and is removed
    return runs


def index_commands(prefix: str | Path, layout: str, tmp: str | Path, binary: str = "mmseqs",
                   gpu: bool = False, sensitivity: float | None = None) -> list[list[str]]:
    """The one-off preparation of a downloaded database for fast search (data-prep Job).

    ``createindex`` precomputes the k-mer index so a search does not rebuild it per batch (for
    the colabfold layout on the consensus DB that the searches use, made first if missing). ``gpu`` adds MMseqs2's
    padded database for GPU search, which needs MMseqs2 16 or later (Debian's 14 lacks it).
    The k-mer size follows the sensitivity: index with the ``-s`` the searches use, or they
    ignore the index and build their own.
    """
    target = f"{prefix}_consensus" if layout == "colabfold" else str(prefix)
    cmds = []
    if layout == "colabfold" and not db_exists(target):
        # ColabFold's downloads (after tsv2exprofiledb) carry profiles but no consensus DB.
        cmds.append([binary, "profile2consensus", str(prefix), target])
    cmds.append([binary, "createindex", target, str(tmp), "--remove-tmp-files", "1",
                 *(["-s", str(sensitivity)] if sensitivity is not None else [])])
    if gpu:
        cmds.append([binary, "makepaddedseqdb", target, f"{target}_pad"])
    return cmds


def has_module(module: str, binary: str = "mmseqs") -> bool:
    """Whether this MMseqs2 build has ``module`` (e.g. ``makepaddedseqdb``: GPU search)."""
    out = subprocess.run([binary, "-h"], capture_output=True, text=True).stdout
    return any(line.split()[:1] == [module] for line in out.splitlines())


def _main(argv=None) -> int:
    """``python -m eksfold.alignment.mmseqs_db index PREFIX LAYOUT TMP [--gpu] [-s S]``: run
    the preparation commands of :func:`index_commands` (the data-preparation Job calls it);
    ``... createdb FASTA PREFIX``: :func:`build_plain` (the uniprot FASTA's MMseqs2 database,
    for species pairing in MMseqs2 mode)."""
    import argparse

    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["createdb"]:
        ap = argparse.ArgumentParser(prog="python -m eksfold.alignment.mmseqs_db createdb")
        ap.add_argument("fasta")
        ap.add_argument("prefix")
        args = ap.parse_args(argv[1:])
        runs = build_plain(args.fasta, args.prefix)
        print(f"{args.prefix}: {'built in %.1f s' % runs[0].wall_s if runs else 'present'}")
        return 0
    ap = argparse.ArgumentParser(prog="python -m eksfold.alignment.mmseqs_db")
    ap.add_argument("action", choices=["index"])
    ap.add_argument("prefix")
    ap.add_argument("layout", choices=["plain", "colabfold"])
    ap.add_argument("tmp")
    ap.add_argument("--gpu", action="store_true", help="also the padded database (MMseqs2 >= 16)")
    ap.add_argument("-s", "--sensitivity", type=float, default=8.0)
    args = ap.parse_args(argv)
    for argv_ in index_commands(args.prefix, args.layout, args.tmp, gpu=args.gpu,
                                sensitivity=args.sensitivity):
        run_tool(f"mmseqs {argv_[1]}", argv_)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
