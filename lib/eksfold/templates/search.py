"""Template search for one target in the align stage, after its MSAs, as OpenFold does it.

``hhsearch``: the UniRef90 MSA (jackhmmer's ``uniref90_hits.sto`` converted to A3M with
OpenFold's ``convert_stockholm_to_a3m`` and truncated to the UniRef90 hit limit, as OpenFold's
``AlignmentRunner`` does; OpenFold's precomputed ``uniref90_hits.a3m``; MMseqs2's
``uniref_mmseqs.a3m``) searched against PDB70 with the flags of OpenFold's ``HHSearch`` wrapper
-> ``pdb70_hits.hhr``.

``hmmsearch`` (AlphaFold 2.3's and OpenFold's multimer route; OpenFold 0.0.1 has no wrapper for
it): the same MSA's rows over the query's columns (OpenFold's MSA parsers), deduplicated, as a
Stockholm alignment whose reference line marks every query column, so ``hmmbuild --hand`` makes
one match state per query residue; ``hmmsearch`` with AlphaFold 2.3's thresholds against
``pdb_seqres.txt`` -> ``hmm_output.sto``.

The programs run through eksfold's :class:`~eksfold.alignment.tools.Tool` lifecycle, so wall
time, CPU time and peak memory of each are recorded like the aligners'. A hit file already in
the folder (OpenFold's precomputed ``pdb70_hits.hhr``) is kept, not searched again.
"""
from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path

from ..alignment.tools import Tool
from ..errors import ConfigError, TargetError, ToolError
from ..targets import Target
from .hits import HHR, HMM_STO, hit_files, read_hits

# where the search's input MSA comes from, in order of preference (jackhmmer, OpenFold's
# precomputed set, MMseqs2)
MSA_SOURCES = ("uniref90_hits.sto", "uniref90_hits.a3m", "uniref_mmseqs.a3m")
# AlphaFold 2.3's hmmsearch thresholds (permissive: the featuriser filters the hits)
HMMSEARCH_FLAGS = ["--F1", "0.1", "--F2", "0.1", "--F3", "0.1", "--incE", "100", "-E", "100",
                   "--domE", "100", "--incdomE", "100"]


class HHSearch(Tool):
    """hhsearch of an A3M against a PDB70-style database, OpenFold's ``HHSearch`` flags."""

    name = "hhsearch"
    output_name = HHR

    def __init__(self, database: str, cpus: int = 2, maxseq: int = 1_000_000,
                 binary: str = "hhsearch"):
        if not Path(database + "_hhm.ffindex").exists():
            raise ConfigError(f"PDB70 database {database} not found (no {database}_hhm.ffindex)")
        self.database, self.cpus, self.maxseq, self.binary = database, cpus, maxseq, binary

    def command(self, query: Path, out: Path) -> list[str]:
        return [self.binary, "-i", str(query), "-o", str(out), "-maxseq", str(self.maxseq),
                "-cpu", str(self.cpus), "-d", self.database]


class Hmmbuild(Tool):
    """hmmbuild ``--hand``: match states exactly where the input's reference line says."""

    name = "hmmbuild"
    output_name = "query.hmm"

    def __init__(self, binary: str = "hmmbuild"):
        self.binary = binary

    def command(self, query: Path, out: Path) -> list[str]:
        return [self.binary, "--hand", "--amino", str(out), str(query)]


class Hmmsearch(Tool):
    """hmmsearch of a profile HMM against a FASTA of PDB SEQRES chains, saving the hits (-A)."""

    name = "hmmsearch"
    output_name = HMM_STO

    def __init__(self, database: str, cpus: int = 2, binary: str = "hmmsearch"):
        if not Path(database).is_file():
            raise ConfigError(f"pdb_seqres file {database} not found")
        self.database, self.cpus, self.binary = database, cpus, binary

    def command(self, query: Path, out: Path) -> list[str]:
        return [self.binary, "--noali", "--cpu", str(self.cpus), *HMMSEARCH_FLAGS, "-A", str(out),
                str(query), self.database]

    def evaluate(self, out: Path) -> None:
        if not out.is_file():     # no hit passed the inclusion thresholds: an empty result
            out.write_text("# STOCKHOLM 1.0\n//\n")


class TemplateSearch:
    """One route's search for a target, run after its MSAs into the same folder."""

    def __init__(self, route: str, databases, cpus: int = 2, max_msa_rows: int = 10000):
        self.route, self.max_msa_rows = route, max_msa_rows
        if route == "hhsearch":
            self.tools = [HHSearch(databases.pdb70, cpus)]
        elif route == "hmmsearch":
            self.tools = [Hmmbuild(), Hmmsearch(databases.pdb_seqres, cpus)]
        else:
            raise ConfigError(f"template search {route!r}: expected hhsearch or hmmsearch")
        self.output_name = self.tools[-1].output_name

    def versions(self) -> dict:
        from ..alignment.tools import tool_version

        return {t.name: tool_version([t.binary, "-h"]) for t in self.tools}

    def run(self, target: Target, align_dir: Path) -> dict:
        """Search (unless this route's hits are already there); the unit's template metrics."""
        align_dir = Path(align_dir)
        if hit_files(align_dir, self.route):
            hits = sum(len(read_hits(target.id, target.sequence, p))
                       for p in hit_files(align_dir, self.route))
            return {"template_search": self.route, "template_hits": hits,
                    "template_search_wall_s": 0.0, "template_search_cpu_s": 0.0,
                    "template_hits_reused": True}
        source = next((name for name in MSA_SOURCES if (align_dir / name).is_file()), None)
        with tempfile.TemporaryDirectory(prefix=f".{target.id}.templates-",
                                         dir=align_dir.parent) as tmp:
            tmp = Path(tmp)
            out = tmp / self.output_name
            try:
                if self.route == "hhsearch":
                    query = tmp / "query.a3m"
                    query.write_text(self._a3m(target, align_dir, source))
                    runs = [self.tools[0].run(query, out)]
                else:
                    query, hmm = tmp / "query.sto", tmp / "query.hmm"
                    query.write_text(self._stockholm(target, align_dir, source))
                    runs = [self.tools[0].run(query, hmm), self.tools[1].run(hmm, out)]
            except ToolError as exc:
                raise TargetError(target.id, f"template search failed: {exc}") from exc
            hits = len(read_hits(target.id, target.sequence, out))   # malformed: TargetError
            out.replace(align_dir / self.output_name)
        return {"template_search": self.route, "template_hits": hits,
                "template_msa": source or "query only",
                "template_search_wall_s": round(sum(r.wall_s for r in runs), 3),
                "template_search_cpu_s": round(sum(r.cpu_s for r in runs), 3),
                "template_search_peak_rss_mb": max(r.peak_rss_mb for r in runs),
                "template_tools": [asdict(r) for r in runs]}

    # -- the search's input, from the target's MSA -------------------------------------------
    def _a3m(self, target: Target, align_dir: Path, source: str | None) -> str:
        from openfold.data import parsers

        if source is None:
            return f">{target.id}\n{target.sequence}\n"
        text = (align_dir / source).read_text()
        if source.endswith(".sto"):
            return parsers.convert_stockholm_to_a3m(text, max_sequences=self.max_msa_rows)
        return text

    def _rows(self, target: Target, align_dir: Path, source: str | None) -> list[str]:
        from openfold.data import parsers

        if source is None:
            return [target.sequence]
        text = (align_dir / source).read_text()
        rows = (parsers.parse_stockholm(text)[0] if source.endswith(".sto")
                else parsers.parse_a3m(text)[0])
        rows = [r.upper().replace(".", "-") for r in rows[:self.max_msa_rows]]
        return list(dict.fromkeys(rows))                  # deduplicated, query first

    def _stockholm(self, target: Target, align_dir: Path, source: str | None) -> str:
        rows = self._rows(target, align_dir, source)
        if not rows or rows[0].replace("-", "") != target.sequence.upper():
            raise TargetError(target.id, f"template search: the first row of {source} is not "
                                         "the target sequence")
        lines = ["# STOCKHOLM 1.0", ""]
        lines += [f"row{i} {row}" for i, row in enumerate(rows)]
        lines += [f"#=GC RF {'x' * len(target.sequence)}", "//", ""]
        return "\n".join(lines)


def identity_files(route: str, databases) -> list[str]:
    """What identifies the route's database for the MSA cache (hits are cached with MSAs)."""
    if route == "hhsearch":
        return [databases.pdb70 + "_hhm.ffindex", databases.pdb70 + "_cs219.ffindex"]
    return [databases.pdb_seqres]


def for_run(config) -> TemplateSearch | None:
    """The template search of a run's align units, or None when the run uses no templates."""
    from .settings import plan

    decided = plan(config)
    if not decided.active:
        return None
    return TemplateSearch(decided.route, config.databases, config.align.cpus,
                          config.align.uniref90_max_hits)
