"""The ``align`` stage: MSAs for one target, written as the folder OpenFold's data pipeline reads.

Searches run for every configured database (jackhmmer for FASTA databases, hhblits for HH-suite
ones); OpenFold's precomputed alignments of the target's PDB chain are used instead when asked
for and their query row is the target's sequence.

Metrics: ``tools`` (one entry per program: wall/CPU seconds, peak RSS, output file),
``tool_wall_s``, ``cpu_s``, ``tool_peak_rss_mb``, ``msa_depth``, ``databases``, ``precomputed``.
"""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from ..alignment.hhsuite import HHblits
from ..alignment.hmmer import Jackhmmer
from ..alignment.msa import check_alignments, msa_depth
from ..alignment.tools import tool_version
from ..errors import ConfigError, TargetError
from ..targets import Target
from .base import Resources, Stage


class AlignStage(Stage):
    name = "align"
    title = "alignment"
    pool = "cpu"
    summary_columns = {"align_wall_s": "wall_s", "align_cpu_s": "cpu_s",
                       "align_peak_rss_mb": "tool_peak_rss_mb", "msa_depth": "msa_depth"}

    fixed_cost_s = 5.0

    def predicted_seconds(self, length: int) -> float:
        # jackhmmer on the 20,000-sequence database: ~0.1 s; real databases scale with their size
        return 0.2 + 0.0005 * length

    def resources(self, length: int) -> Resources:
        # jackhmmer's memory grows with query length and database chunking
        return Resources("cpu", cpu=self.config.align.cpus, memory_gb=16 if length <= 1000 else 32)

    def open(self) -> None:
        """Check the databases once per worker, not once per target."""
        dbs, cfg = self.config.databases, self.config.align
        self.tools = []
        if dbs.uniref90:
            self.tools.append(Jackhmmer(dbs.uniref90, cfg.cpus, cfg.jackhmmer_iterations,
                                        cfg.evalue, cfg.uniref90_max_hits))
        for field_, max_hits in (("mgnify", cfg.mgnify_max_hits),
                                 ("small_bfd", cfg.uniref90_max_hits)):
            if getattr(dbs, field_):
                tool = Jackhmmer(getattr(dbs, field_), cfg.cpus, cfg.jackhmmer_iterations,
                                 cfg.evalue, max_hits)
                tool.output_name = f"{field_}_hits.sto"
                self.tools.append(tool)
        if dbs.bfd:
            prefixes = [dbs.bfd] + ([dbs.uniclust30] if dbs.uniclust30 else [])
            self.tools.append(HHblits(prefixes, cfg.cpus, cfg.hhblits_iterations))
        # versions from where the unit runs (a Pod's image), not from the driver's machine
        self.versions = {tool.name: tool_version([tool.binary, "-h"]) for tool in self.tools}
        if not self.tools and not cfg.use_precomputed:
            raise ConfigError("no sequence database configured for the alignment stage: pass "
                              "--uniref90 FASTA, set $EKSFOLD_DATABASE, or run `make setup` "
                              "to build the default one")

    def run_unit(self, target: Target, inputs, out: Path) -> dict:
        out.mkdir(parents=True, exist_ok=True)
        if self.config.align.use_precomputed:
            reused = self._precomputed(target, out)
            if reused is not None:
                return reused
        if not self.tools:
            raise TargetError(target.id, "no precomputed alignments for this chain, and no "
                                         "sequence database is configured")
        query = out.parent / f".{target.id}.query.fasta"
        query.write_text(target.fasta())
        try:
            runs = [asdict(tool.run(query, out / tool.output_name)) | {"output": tool.output_name}
                    for tool in self.tools]
        finally:
            query.unlink(missing_ok=True)
        return {
            "tools": runs,
            "tool_wall_s": round(sum(r["wall_s"] for r in runs), 3),
            "cpu_s": round(sum(r["cpu_s"] for r in runs), 3),
            "tool_peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            "msa_depth": msa_depth(out),
            "databases": self.config.databases.configured(),
            "versions": self.versions,
        }

    def _precomputed(self, target: Target, out: Path) -> dict | None:
        """Metrics for OpenFold's precomputed alignments of the target's chain, or None."""
        if not (target.pdb_id and target.chain):
            return None
        from ..data.alignments import fetch_alignments

        started = time.perf_counter()
        if fetch_alignments(target.pdb_id, target.chain, out,
                            source=self.config.align.precomputed_source, progress=False) is None:
            return None
        try:
            check_alignments(target, out)
        except TargetError:
            # the chain's SEQRES differs from the target sequence: align from scratch instead
            for path in list(out.iterdir()):
                path.unlink()
            return None
        return {"tools": [], "precomputed": f"{target.pdb_id}_{target.chain}",
                "tool_wall_s": round(time.perf_counter() - started, 3), "cpu_s": 0.0,
                "tool_peak_rss_mb": 0.0, "msa_depth": msa_depth(out), "databases": {}}


def align_target(target: Target, databases, config, out_dir) -> dict:
    """One call: the align stage for one target outside a run (tests, notebooks)."""
    from types import SimpleNamespace

    from ..config import RunConfig

    stage = AlignStage(SimpleNamespace(config=RunConfig(databases=databases, align=config)))
    stage.open()
    return stage.run_unit(target, None, Path(out_dir))
