"""Is a sequence database whole? Cheap checks for truncation, run where the searches run.

A truncated database does not make the search tools fail: jackhmmer reads a FASTA cut in the
middle of a record as a smaller database and returns fewer hits, silently. Each check here is
cheap (the last 64 KiB of a FASTA; the index of an indexed database, never its data):

- FASTA (jackhmmer): the file ends with a newline and its last record has a sequence;
- ffindex (HH-suite ``<prefix>_{a3m,hhm,cs219}.ffindex/.ffdata``) and MMseqs2 (``<db>.index``
  next to ``<db>``): every entry's offset + length lies inside the data file;
- against the run's manifest (sizes recorded when the run began): the file has not shrunk
  (a larger one is a database downloaded again, which is fine).

:func:`check_database` returns the problem in words, or None for a whole database.
"""
from __future__ import annotations

from pathlib import Path

TAIL = 64 * 1024


def _fasta_problem(path: Path) -> str | None:
    size = path.stat().st_size
    if size == 0:
        return "it is empty"
    with open(path, "rb") as fh:
        fh.seek(max(0, size - TAIL))
        tail = fh.read()
    if not tail.endswith(b"\n"):
        return ("it ends in the middle of a line (no final newline; a FASTA written by hand may "
                "only lack one: add it)")
    lines = tail.rstrip(b"\n").split(b"\n")
    if lines[-1].startswith(b">"):
        return "its last record has a header and no sequence"
    return None


def _index_problem(index: Path, data: Path) -> str | None:
    """An ffindex/MMseqs2 index (``name<TAB>offset<TAB>length`` per line) against its data."""
    if not data.exists():
        return f"{data.name} is missing"
    size, end = data.stat().st_size, 0
    with open(index, "rb") as fh:
        for line in fh:
            parts = line.split(b"\t")
            if len(parts) < 3:
                return f"{index.name} has a malformed line (truncated?)"
            end = max(end, int(parts[1]) + int(parts[2]))
    if end > size:
        return f"{data.name} has {size:,} bytes but {index.name} indexes {end:,}"
    return None


def check_database(path: str, recorded: dict | None = None) -> str | None:
    """The reason ``path`` looks truncated or changed, or None when it looks whole."""
    p = Path(path)
    if recorded and recorded.get("bytes") is not None and p.is_file():
        now = p.stat().st_size
        if now < recorded["bytes"]:
            return f"it has {now:,} bytes, {recorded['bytes']:,} when the run began"
    if p.is_file() and not Path(f"{path}.index").exists():
        return _fasta_problem(p)
    if Path(f"{path}.index").is_file():                      # MMseqs2: <db> + <db>.index
        problem = _index_problem(Path(f"{path}.index"), p)
        if problem:
            return problem
    for kind in ("a3m", "hhm", "cs219"):                     # HH-suite ffindex pairs
        index = Path(f"{path}_{kind}.ffindex")
        if index.is_file():
            problem = _index_problem(index, Path(f"{path}_{kind}.ffdata"))
            if problem:
                return problem
    return None
