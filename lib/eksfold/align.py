"""The alignment stage: real alignment programs producing an OpenFold alignment folder.

Each program is a small class that builds its command line and parses its output; all of them
run through :func:`run_tool`, which measures wall time, CPU time and peak memory of the child
and turns a non-zero exit into :class:`~eksfold.errors.ToolError`. File names follow OpenFold's
conventions (``uniref90_hits.sto``, ``mgnify_hits.sto``, ``bfd_uniclust_hits.a3m``,
``pdb70_hits.hhr``), so the folder is what OpenFold's ``DataPipeline`` reads.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .config import AlignConfig, DatabaseConfig
from .errors import ConfigError, TargetError, ToolError
from .targets import Target


@dataclass
class ToolRun:
    """Resource use of one external program run."""

    tool: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float


def run_tool(tool: str, args: list[str], cwd: str | Path | None = None) -> ToolRun:
    """Run ``args`` to completion; measure it with ``wait4`` (rusage of exactly this child)."""
    if shutil.which(args[0]) is None:
        raise ConfigError(f"{args[0]} not found on PATH: install the alignment tools (make setup)")
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Drain stderr before waiting so a chatty tool cannot block on a full pipe.
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = "\n".join(stderr.decode(errors="replace").strip().splitlines()[-15:])
        raise ToolError(tool, proc.returncode, tail)
    return ToolRun(tool, round(wall, 3), round(usage.ru_utime + usage.ru_stime, 3),
                   round(usage.ru_maxrss / 1024, 1))


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
        if path.suffix in (".sto", ".a3m"):
            for seq in read_msa_sequences(path).values():
                # A3M lower case = insertions; OpenFold drops them when comparing rows.
                distinct.add("".join(c for c in seq if not c.islower() and c != "."))
    return len(distinct)


def check_alignments(target: Target, alignment_dir: str | Path) -> None:
    """Refuse MSAs whose first row is not this target's sequence (a wrong or corrupt file).

    OpenFold itself accepts such files silently and predicts from mismatched features.
    """
    for path in sorted(Path(alignment_dir).iterdir()):
        if path.suffix not in (".sto", ".a3m"):
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


class Jackhmmer:
    """jackhmmer (HMMER 3) against a FASTA database, with AlphaFold2's filter settings."""

    name = "jackhmmer"

    def __init__(self, database: str, cpus: int = 2, iterations: int = 1,
                 evalue: float = 1e-4, max_hits: int = 10000, binary: str = "jackhmmer"):
        if not Path(database).is_file():
            raise ConfigError(f"jackhmmer database {database} not found")
        self.database, self.cpus, self.iterations = database, cpus, iterations
        self.evalue, self.max_hits, self.binary = evalue, max_hits, binary

    def command(self, query: Path, out_sto: Path) -> list[str]:
        return [self.binary, "-o", "/dev/null", "-A", str(out_sto), "--noali",
                "--F1", "0.0005", "--F2", "0.00005", "--F3", "0.0000005",
                "--incE", str(self.evalue), "-E", str(self.evalue),
                "--cpu", str(self.cpus), "-N", str(self.iterations), str(query), self.database]

    def run(self, query: Path, out_sto: Path) -> ToolRun:
        result = run_tool(self.name, self.command(query, out_sto))
        truncate_stockholm(out_sto, self.max_hits)
        return result


class HHblits:
    """hhblits (HH-suite 3) against one or more HH-suite databases, writing A3M."""

    name = "hhblits"

    def __init__(self, databases: list[str], cpus: int = 2, iterations: int = 3,
                 binary: str = "hhblits"):
        for db in databases:
            if not Path(db + "_cs219.ffdata").exists():
                raise ConfigError(f"hhblits database {db} not found (expected {db}_cs219.ffdata)")
        self.databases, self.cpus, self.iterations, self.binary = databases, cpus, iterations, binary

    def command(self, query: Path, out_a3m: Path) -> list[str]:
        cmd = [self.binary, "-i", str(query), "-cpu", str(self.cpus), "-oa3m", str(out_a3m),
               "-o", "/dev/null", "-n", str(self.iterations), "-e", "0.001", "-maxseq", "1000000",
               "-realign_max", "100000", "-maxfilt", "100000", "-min_prefilter_hits", "1000"]
        for db in self.databases:
            cmd += ["-d", db]
        return cmd

    def run(self, query: Path, out_a3m: Path) -> ToolRun:
        return run_tool(self.name, self.command(query, out_a3m))


def _precomputed(target: Target, config: AlignConfig, out_dir: Path) -> dict | None:
    """Metrics for OpenFold's precomputed alignments of the target's chain, or None to align."""
    if not (target.pdb_id and target.chain):
        return None
    from .data.alignments import fetch_alignments

    started = time.perf_counter()
    if fetch_alignments(target.pdb_id, target.chain, out_dir, source=config.precomputed_source,
                        progress=False) is None:
        return None
    try:
        check_alignments(target, out_dir)
    except TargetError:
        # The chain's SEQRES differs from the target sequence: align from scratch instead.
        for path in list(out_dir.iterdir()):
            path.unlink()
        return None
    return {"tools": [], "precomputed": f"{target.pdb_id}_{target.chain}",
            "tool_wall_s": round(time.perf_counter() - started, 3), "cpu_s": 0.0,
            "tool_peak_rss_mb": 0.0, "msa_depth": msa_depth(out_dir), "databases": {}}


def align_target(target: Target, databases: DatabaseConfig, config: AlignConfig,
                 out_dir: str | Path) -> dict:
    """Run every configured search for ``target`` into ``out_dir``; return stage metrics."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if config.use_precomputed:
        reused = _precomputed(target, config, out_dir)
        if reused is not None:
            return reused
    query = out_dir / "query.fasta"
    query.write_text(target.fasta())
    searches = []
    if databases.uniref90:
        searches.append((Jackhmmer(databases.uniref90, config.cpus, config.jackhmmer_iterations,
                                   config.evalue, config.uniref90_max_hits), "uniref90_hits.sto"))
    if databases.mgnify:
        searches.append((Jackhmmer(databases.mgnify, config.cpus, config.jackhmmer_iterations,
                                   config.evalue, config.mgnify_max_hits), "mgnify_hits.sto"))
    if databases.bfd:
        dbs = [databases.bfd] + ([databases.uniclust30] if databases.uniclust30 else [])
        searches.append((HHblits(dbs, config.cpus, config.hhblits_iterations),
                         "bfd_uniclust_hits.a3m"))
    if not searches:
        raise ConfigError("no sequence database configured for the alignment stage")
    runs = []
    for tool, filename in searches:
        runs.append(asdict(tool.run(query, out_dir / filename)) | {"output": filename})
    query.unlink()
    return {
        "tools": runs,
        "tool_wall_s": round(sum(r["wall_s"] for r in runs), 3),
        "cpu_s": round(sum(r["cpu_s"] for r in runs), 3),
        "tool_peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "msa_depth": msa_depth(out_dir),
        "databases": databases.configured(),
    }
