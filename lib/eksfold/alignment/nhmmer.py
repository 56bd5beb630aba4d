"""RNA MSAs: nhmmer (HMMER 3) of an RNA chain against an RNA database, as AlphaFold3 searches Rfam.

OpenFold3 reads RNA MSAs (its ``MSASettings.moltypes`` are protein and RNA) from per-chain
files named ``rfam_hits``, ``rnacentral_hits`` or ``nt_hits`` (its ``aln_order`` and
``max_seq_counts``: 10,000 rows each) and has no search of its own. The settings follow
AlphaFold3's Nhmmer wrapper and its data pipeline's Rfam search: ``-E 1e-3 --incE 1e-3
--rna --watson``, ``--F3 1e-5`` (``0.02`` below 50 nucleotides, as RNAcentral advises for
short queries), at most 10,000 sequences with the query. nhmmer's hits are local (often
shorter than the query), so, as AlphaFold3 does, the hits are re-aligned to a profile built
from the query alone (``hmmbuild --rna``, ``hmmalign``): every row then has one column per
query residue, insertions in lower case. The query is the first row, rows that are equal
once insertions are removed appear once (AlphaFold3 deduplicates its RNA MSA the same way),
and the result is written as A3M (``rfam_hits.a3m``), which OpenFold3's ``parse_a3m`` reads.

Each program runs through :func:`~eksfold.alignment.tools.run_tool` (wall, CPU, peak RSS);
:meth:`Nhmmer.run` returns their sum. Biopython reads the Stockholm and A2M files.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import ConfigError, ToolError
from .tools import Tool, ToolRun, run_tool

RFAM_HITS = "rfam_hits.a3m"
SHORT_QUERY = 50            # below this many nucleotides, AlphaFold3's --F3 0.02
MAX_SEQUENCES = 10_000      # AlphaFold3's Rfam max_sequences; OpenFold3's rfam_hits cap


class Nhmmer(Tool):
    """nhmmer against an RNA FASTA, hits re-aligned to the query's profile -> A3M."""

    name = "nhmmer"
    output_name = RFAM_HITS

    def __init__(self, database: str, cpus: int = 2, evalue: float = 1e-3,
                 f3: float = 1e-5, max_sequences: int = MAX_SEQUENCES,
                 binary: str = "nhmmer"):
        if not Path(database).is_file():
            raise ConfigError(f"rfam database {database} not found: pass --rfam FASTA (RNA "
                              "sequences; `make setup` builds a stand-in), or leave it out to "
                              "fold RNA chains single-sequence")
        self.database, self.cpus, self.evalue = database, cpus, evalue
        self.f3, self.max_sequences, self.binary = f3, max_sequences, binary

    def settings(self) -> dict:
        """What the hits depend on besides the database (the MSA cache key)."""
        return {"search": "nhmmer", "evalue": self.evalue, "f3": self.f3,
                "short_f3": 0.02, "strand": "watson", "max_sequences": self.max_sequences}

    def command(self, query: Path, out: Path, length: int = SHORT_QUERY) -> list[str]:
        f3 = 0.02 if length < SHORT_QUERY else self.f3
        return [self.binary, "-o", os.devnull, "--noali", "--cpu", str(self.cpus),
                "-E", str(self.evalue), "--incE", str(self.evalue), "--rna", "--watson",
                "--F3", str(f3), "-A", str(out), str(query), self.database]

    def run(self, query: Path, out: Path) -> ToolRun:
        """Search, re-align and write ``out`` (A3M); the programs' summed resource use."""
        from Bio import SeqIO

        name, sequence = next((r.id, str(r.seq).upper())
                              for r in SeqIO.parse(str(query), "fasta"))
        work = out.parent / f".{out.stem}.nhmmer"
        work.mkdir(parents=True, exist_ok=True)
        try:
            raw = work / "hits.sto"
            runs = [run_tool(self.name, self.command(query, raw, len(sequence)))]
            hits = _hits(raw, self.max_sequences - 1)
            aligned: list[tuple[str, str]] = []
            if hits:
                aligned, more = _realign(name, sequence, hits, work)
                runs += more
            _write_a3m(out, name, sequence, aligned)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self.evaluate(out)
        return ToolRun(self.name, round(sum(r.wall_s for r in runs), 3),
                       round(sum(r.cpu_s for r in runs), 3),
                       max(r.peak_rss_mb for r in runs))


def _hits(sto: Path, limit: int) -> list[tuple[str, str]]:
    """nhmmer's hits (``name/start-end``, ungapped sequence), best first, at most ``limit``.
    No hit: nhmmer writes no alignment (an empty or absent file)."""
    from Bio import AlignIO

    if not sto.is_file() or sto.stat().st_size == 0:
        return []
    hits = []
    for alignment in AlignIO.parse(str(sto), "stockholm"):
        for row in alignment:
            seq = "".join(c for c in str(row.seq).upper() if c.isalpha())
            if seq:
                hits.append((row.id, seq))
    return hits[:limit]


def _realign(name: str, sequence: str, hits, work: Path) -> tuple[list, list[ToolRun]]:
    """The hits aligned to the query's own profile (one match state per query residue), as
    A2M rows without the '.' padding of insert columns (A3M)."""
    from Bio import SeqIO

    query_fa, hits_fa = work / "query.fasta", work / "hits.fasta"
    profile, a2m = work / "query.hmm", work / "hits.a2m"
    query_fa.write_text(f">{name}\n{sequence}\n")
    hits_fa.write_text("".join(f">{n}\n{s}\n" for n, s in hits))
    runs = [run_tool("hmmbuild", ["hmmbuild", "--rna", "--informat", "afa", str(profile),
                                  str(query_fa)]),
            run_tool("hmmalign", ["hmmalign", "--rna", "--outformat", "A2M", "-o", str(a2m),
                                  str(profile), str(hits_fa)])]
    rows = [(r.id, str(r.seq).replace(".", "")) for r in SeqIO.parse(str(a2m), "fasta")]
    for row_name, row in rows:
        if sum(not c.islower() for c in row) != len(sequence):
            raise ToolError("hmmalign", 0, f"row {row_name} has {sum(not c.islower() for c in row)}"
                                           f" match columns, the query {len(sequence)}")
    return rows, runs


def _write_a3m(out: Path, name: str, sequence: str, rows) -> None:
    """Query first, then each distinct row (insertions ignored when comparing), atomically."""
    seen, lines = {sequence}, [f">{name}", sequence]
    for row_name, row in rows:
        key = "".join(c for c in row if not c.islower())
        if key not in seen:
            seen.add(key)
            lines += [f">{row_name}", row]
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, out)


def a3m_rows(path: str | Path) -> int:
    """Rows of an A3M file (the query included)."""
    return sum(1 for line in Path(path).read_text().splitlines() if line.startswith(">"))


__all__ = ["Nhmmer", "RFAM_HITS", "a3m_rows"]
