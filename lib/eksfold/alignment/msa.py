"""MSA files: reading Stockholm/A3M rows, depth, checks, truncation as AlphaFold does.

OpenFold's data pipeline reads every ``*.sto`` / ``*.a3m`` of a target's alignment folder;
these helpers read the same files for the stage's checks and records.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import TargetError
from ..targets import Target

MSA_SUFFIXES = (".sto", ".a3m")
NOT_MSAS = ("hmm_output.sto",)   # template hits (eksfold.templates.search), not an MSA


def read_msa_sequences(path: str | Path) -> dict[str, str]:
    """Aligned sequences of a Stockholm (.sto) or A3M (.a3m) file, by name, in file order."""
    path = Path(path)
    seqs: dict[str, str] = {}
    text = path.read_text()
    if path.suffix == ".sto":
        for line in text.splitlines():
            if not line.strip() or line.startswith(("#", "//")):
                continue
            name, _, chunk = line.partition(" ")
            seqs[name] = seqs.get(name, "") + chunk.strip()
    else:
        name = None
        for line in text.splitlines():
            if line.startswith(">"):
                name = line[1:].split()[0] if line[1:].split() else f"seq{len(seqs)}"
                seqs[name] = ""
            elif name is not None:
                seqs[name] += line.strip()
    return seqs


def msa_depth(alignment_dir: str | Path) -> int:
    """Distinct aligned sequences over all MSAs of a folder (as OpenFold deduplicates them)."""
    distinct = set()
    for path in Path(alignment_dir).iterdir():
        if path.suffix in MSA_SUFFIXES and path.name not in NOT_MSAS:
            for seq in read_msa_sequences(path).values():
                # A3M lower case = insertions; OpenFold drops them when comparing rows.
                distinct.add("".join(c for c in seq if not c.islower() and c != "."))
    return len(distinct)


def check_alignments(target: Target, alignment_dir: str | Path) -> None:
    """Refuse MSAs whose first row is not this target's sequence (a wrong or corrupt file).

    OpenFold itself accepts such files silently and predicts from mismatched features.
    """
    for path in sorted(Path(alignment_dir).iterdir()):
        if path.suffix not in MSA_SUFFIXES or path.name in NOT_MSAS:
            continue
        rows = read_msa_sequences(path)
        query = next(iter(rows.values()), "")
        ungapped = "".join(c for c in query if c not in "-." and not c.islower())
        if ungapped.upper() != target.sequence:
            raise TargetError(target.id, f"alignment {path.name}: first row is not the target "
                                         f"sequence ({len(ungapped)} vs {target.length} residues)")


def truncate_stockholm(path: Path, max_sequences: int) -> None:
    """Keep the first ``max_sequences`` sequences (query first), as AlphaFold2 does."""
    keep: set[str] = set()
    lines_out = []
    for line in path.read_text().splitlines():
        if line.startswith("#=GS"):
            name = line.split()[1]
            if name not in keep and len(keep) >= max_sequences:
                continue
        elif line.strip() and not line.startswith(("#", "//")):
            name = line.split()[0]
            if name not in keep:
                if len(keep) >= max_sequences:
                    continue
                keep.add(name)
        elif line.startswith("#=GR"):
            if line.split()[1] not in keep:
                continue
        lines_out.append(line)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines_out) + "\n")
    os.replace(tmp, path)


