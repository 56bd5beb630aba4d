"""UniProt hits for species pairing in MMseqs2 mode: ``uniprot_hits.a3m`` with UniProt's names.

In MMseqs2 mode each distinct protein chain of a heteromer is searched with MMseqs2 against an
MMseqs2 database of the ``uniprot`` FASTA (:class:`UniProtMMseqs2`: the plain layout, one
iteration, as AlphaFold-Multimer's single jackhmmer pass over UniProt). OpenFold3 reads the
file by its stem (``uniprot_hits``, in its ``msas_to_pair``) with its A3M parser, whose row
metadata is the whole header line, and takes the species from names
``db|ACC|NAME_SPECIES/start-end`` (``process_msa_pairing_metadata`` splits on ``|_/:-``
into exactly six fields).

MMseqs2 names a hit by the accession it parses out of a UniProt header (``Q39RR2`` for
``sp|Q39RR2|RS6_GEOMG 30S ...``), so the species is lost in ``result2msa``'s rows. A
``convertalis`` of the same result gives each hit's full header (``theader``); every A3M row
is renamed to the header's first word and the hit's range (``result2msa`` mode 6 states it,
0-based), the names jackhmmer's Stockholm has. A row whose header is not UniProt's is dropped:
it cannot be paired, and one name that does not split into six fields stops OpenFold3's
pairing of the whole complex.

The database (:func:`database_for`): ``--uniprot`` itself when it is an MMseqs2 database
prefix, else ``<dir>/mmseqs/<stem>`` beside the FASTA, where ``make test-setup``
(tools/build_mmseqs_db.py) and ``eksfold data databases prepare`` build it.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from .mmseqs import OUTPUTS, MMseqs2Search, db_exists

UNIPROT_A3M = "uniprot_hits.a3m"
# sp|P12345|NAME_SPECIES / tr|A0A0C1TPU5|A0A0C1TPU5_9DELT: the six fields OpenFold3 splits
UNIPROT_NAME = re.compile(r"^(sp|tr)\|[^|_/:\-\s]+\|[^|_/:\-\s]+_[^|_/:\-\s]+$")
TSTART, TEND = 7, 8   # result2msa --msa-format-mode 6: id score seqid evalue qs qe ql ts te tl


def expected_database(uniprot: str | Path) -> Path:
    """Where the MMseqs2 database of the uniprot FASTA ``uniprot`` is looked for and built."""
    path = Path(uniprot)
    return path.parent / "mmseqs" / path.stem


def database_for(uniprot: str | Path) -> Path | None:
    """The MMseqs2 database of ``uniprot`` (itself, if a prefix), or None when none is built."""
    for prefix in (Path(uniprot), expected_database(uniprot)):
        if db_exists(prefix):
            return prefix
    return None


@dataclass
class UniProtMMseqs2(MMseqs2Search):
    """:class:`~eksfold.alignment.mmseqs.MMseqs2Search` of the uniprot database, writing
    ``uniprot_hits.a3m`` (rows named as UniProt's) instead of ``uniref_mmseqs.a3m``."""

    iterations: int = 1

    def commands(self, qdb: str, work: str) -> list[tuple[str, list[str]]]:
        return [*super().commands(qdb, work),
                ("convertalis", [self.binary, "convertalis", qdb, self.database, f"{work}/res",
                                 f"{work}/names.tsv", "--format-output", "target,theader",
                                 *self._common()])]

    def run_batch(self, sequences: list[str], work: str | Path) -> tuple[dict, list]:
        unpacked, runs = super().run_batch(sequences, work)
        with open(Path(work) / "names.tsv", newline="") as fh:
            names = {row[0]: (row[1].split() or [""])[0]
                     for row in csv.reader(fh, delimiter="\t") if len(row) > 1}
        renamed, self._dropped = {}, {}
        for index, path in unpacked.get(OUTPUTS["uniref"], {}).items():
            text, dropped = rename_rows(path.read_text(errors="replace").replace("\0", ""), names)
            out = path.with_name(f"{path.stem}.uniprot.a3m")
            out.write_text(text)
            renamed[index], self._dropped[out] = out, dropped
        return {UNIPROT_A3M: renamed}, runs

    def collect(self, target_id, sequence, results, out_dir, batch) -> dict:
        result = super().collect(target_id, sequence, results, out_dir, batch)
        if result["status"] == "ok":
            path = results.get(UNIPROT_A3M)
            result["hits"] = result["rows"][UNIPROT_A3M] - 1            # the query not counted
            result["dropped_rows"] = self._dropped.get(path, 0)
        return result


def rename_rows(text: str, names: dict[str, str]) -> tuple[str, int]:
    """``result2msa`` A3M text with every hit renamed ``db|ACC|NAME_SPECIES/start-end`` (from
    ``names``: MMseqs2's id -> the header's first word); rows without a UniProt name dropped.
    Returns (text, rows dropped); the query (first row) is kept as it is."""
    out, keep, dropped = [], True, 0
    for line in text.splitlines():
        if not line.startswith(">"):
            if keep and line.strip():
                out.append(line)
            continue
        if not out:                      # the query
            out.append(line)
            continue
        fields = line[1:].split("\t")
        name = names.get(fields[0].strip(), "")
        keep = bool(UNIPROT_NAME.match(name)) and len(fields) > TEND
        if keep:
            out.append(f">{name}/{int(fields[TSTART]) + 1}-{int(fields[TEND]) + 1}")
        else:
            dropped += 1
    return "\n".join(out) + "\n", dropped


__all__ = ["UNIPROT_A3M", "UNIPROT_NAME", "UniProtMMseqs2", "database_for", "expected_database",
           "rename_rows"]
