"""MMseqs2 as an alignment mode: iterative profile search of a whole batch of queries at once.

One :meth:`MMseqs2Search.search` call searches every query of an alignment shard in a single
MMseqs2 invocation chain (MMseqs2 amortises its k-mer index over the batch) and splits the
result into one A3M per target: query first, every row gapped to the query's columns, lower
case for insertions, as ColabFold writes it and as ``openfold.data.parsers.parse_a3m`` reads it.

Two database layouts:

``plain``
    A sequence database (``mmseqs createdb`` of a FASTA file): ``search`` with
    ``--num-iterations``, then ``result2msa``. Writes ``uniref_mmseqs.a3m``.
``colabfold``
    ColabFold's expandable cluster-profile layout (``DB`` profiles, ``DB_seq`` members,
    ``DB_aln`` cluster-to-member alignments, ``DB_consensus``; see
    :mod:`eksfold.alignment.mmseqs_db`), searched the way ``colabfold_search`` does: search,
    ``expandaln`` to the members, realign with the query profile, ``filterresult``,
    ``result2msa``; then the same for an environmental database with the query profile as the
    query. Writes ``uniref_mmseqs.a3m`` and ``env_mmseqs.a3m``. Debian's MMseqs2 14 has no
    profile-to-profile search, so iterations search the cluster consensus sequences
    (``DB_consensus``) and the profiles enter through the realignment; later releases search the
    profiles directly.

A malformed or empty result fails only its own target (:class:`~eksfold.errors.TargetError`
in the per-target result); the rest of the batch is written.
"""
from __future__ import annotations

import csv
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .msa import check_alignments, read_msa_sequences
from .tools import ToolRun, run_tool
from ..errors import ConfigError, TargetError
from ..targets import Target

LAYOUTS = ("plain", "colabfold")
OUTPUTS = {"uniref": "uniref_mmseqs.a3m", "env": "env_mmseqs.a3m"}


def db_exists(prefix: str | Path) -> bool:
    """True when ``prefix`` is an MMseqs2 database (its ``.dbtype`` and ``.index`` exist)."""
    return Path(f"{prefix}.dbtype").is_file() and Path(f"{prefix}.index").is_file()


@dataclass
class MMseqs2Search:
    """MMseqs2 profile search of many queries against one database layout.

    Parameters
    ----------
    database : str
        MMseqs2 database prefix: a sequence DB (``plain``) or a cluster-profile DB
        (``colabfold``; ``{database}_seq``, ``_aln`` and ``_consensus`` beside it).
    layout : {"plain", "colabfold"}
    env_database : str, optional
        ColabFold layout only: the environmental database (same layout), searched second.
    sensitivity, iterations, max_seqs, evalue : ColabFold's defaults (``-s 8``,
        ``--num-iterations 3``, ``--max-seqs 10000``, ``-e 0.1``).
    cpus : int
        ``--threads`` of every step.
    memory_limit : str, optional
        ``--split-memory-limit`` of the searches, for a database whose index exceeds the pod.
    """

    database: str
    layout: str = "plain"
    env_database: str | None = None
    sensitivity: float = 8.0
    iterations: int = 3
    max_seqs: int = 10000
    evalue: float = 0.1
    cpus: int = 2
    memory_limit: str | None = None   # --split-memory-limit (e.g. "8G"): split the target index
    binary: str = "mmseqs"

    name = "mmseqs2"

    def __post_init__(self):
        if self.layout not in LAYOUTS:
            raise ConfigError(f"mmseqs2 layout {self.layout!r}: expected one of {LAYOUTS}")
        needed = [self.database]
        if self.layout == "colabfold":
            for db in [self.database] + ([self.env_database] if self.env_database else []):
                needed += [db, f"{db}_seq", f"{db}_aln", f"{db}_consensus"]
        elif self.env_database:
            raise ConfigError("mmseqs2: an environmental database needs the colabfold layout")
        for db in needed:
            if not db_exists(db):
                raise ConfigError(f"mmseqs2 database {db} not found (no {db}.dbtype/.index): "
                                  "build it with tools/build_mmseqs_db.py (make test-setup)")

    # -- command lines ---------------------------------------------------------------------
    def _common(self) -> list[str]:
        return ["--threads", str(self.cpus), "-v", "1"]

    def search_args(self) -> list[str]:
        return ["--num-iterations", str(self.iterations), "-s", str(self.sensitivity),
                "-e", str(self.evalue), "--max-seqs", str(self.max_seqs), "-a",
                *(["--split-memory-limit", self.memory_limit] if self.memory_limit else [])]

    def commands(self, qdb: str, work: str) -> list[tuple[str, list[str]]]:
        """Every step of the batch search as ``(step name, argv)``, in order.

        ``qdb`` is the query database, ``work`` a scratch folder; outputs are the A3M
        databases ``{work}/uniref.a3m`` (and ``{work}/env.a3m``).
        """
        m, c, w = self.binary, self._common(), work
        if self.layout == "plain":
            return [("search", [m, "search", qdb, self.database, f"{w}/res", f"{w}/tmp",
                                *self.search_args(), *c]),
                    ("result2msa", [m, "result2msa", qdb, self.database, f"{w}/res",
                                    f"{w}/uniref.a3m", "--msa-format-mode", "6", *c])]
        if self.iterations > 1:
            # The uniref search's last query profile (ColabFold's prof_res): realign with it,
            # and search the environmental database with it so env hits build on uniref's.
            profile = f"{w}/prof_res"
            prep = [("profile", [m, "mvdb", f"{w}/tmp_uniref/latest/profile_{self.iterations - 2}",
                                 profile, "-v", "1"]),
                    ("profile_h", [m, "lndb", f"{qdb}_h", f"{profile}_h", "-v", "1"])]
        else:
            profile, prep = qdb, []
        steps = self._expandable(qdb, qdb, self.database, w, "uniref", profile, prep)
        if self.env_database:
            env_profile = (f"{w}/tmp_env/latest/profile_{self.iterations - 2}"
                           if self.iterations > 1 else profile)
            steps += self._expandable(profile, qdb, self.env_database, w, "env", env_profile, [])
        return steps

    def _expandable(self, query: str, qdb: str, db: str, w: str, tag: str, profile: str,
                    after_search: list):
        """search -> expandaln -> realign with ``profile`` -> filterresult -> result2msa."""
        m, c = self.binary, self._common()
        res = f"{w}/res_{tag}"
        return [
            (f"search_{tag}", [m, "search", query, f"{db}_consensus", res, f"{w}/tmp_{tag}",
                               *self.search_args(), *c]),
            *after_search,
            (f"expandaln_{tag}", [m, "expandaln", query, f"{db}_seq", res, f"{db}_aln",
                                  f"{res}_exp", "--expansion-mode", "0", "-e", "inf",
                                  "--expand-filter-clusters", "1", "--max-seq-id", "0.95", *c]),
            (f"align_{tag}", [m, "align", profile, f"{db}_seq", f"{res}_exp", f"{res}_realign",
                              "-e", "10", "--max-accept", "100000", "--alt-ali", "10", "-a", *c]),
            (f"filterresult_{tag}", [m, "filterresult", qdb, f"{db}_seq", f"{res}_realign",
                                     f"{res}_filter", "--qid", "0", "--qsc", "0.8", "--diff", "0",
                                     "--max-seq-id", "1.0", "--filter-min-enable", "100", *c]),
            (f"result2msa_{tag}", [m, "result2msa", qdb, f"{db}_seq", f"{res}_filter",
                                   f"{w}/{tag}.a3m", "--msa-format-mode", "6", "--filter-msa",
                                   "1", "--filter-min-enable", "1000", "--diff", "3000", "--qid",
                                   "0.0,0.2,0.4,0.6,0.8,1.0", "--qsc", "0", "--max-seq-id",
                                   "0.95", *c]),
        ]

    def outputs(self) -> list[str]:
        """The A3M file names each target's folder gets."""
        return [OUTPUTS["uniref"]] + ([OUTPUTS["env"]] if self.env_database else [])

    # -- running ---------------------------------------------------------------------------
    def run_batch(self, sequences: list[str], work: str | Path) -> tuple[dict, list[ToolRun]]:
        """Search ``sequences`` in one invocation chain; unpack the A3Ms under ``work``.

        Returns ``({output name: {query index: Path}}, [ToolRun per step])``; a query index
        missing from the mapping means MMseqs2 wrote no entry for it.
        """
        work = Path(work)
        work.mkdir(parents=True, exist_ok=True)
        fasta = work / "queries.fasta"
        # Index names, not target ids: headers stay valid whatever the ids contain.
        fasta.write_text("".join(f">q{i}\n{s}\n" for i, s in enumerate(sequences)))
        qdb = str(work / "qdb")
        runs = [run_tool("mmseqs createdb", [self.binary, "createdb", str(fasta), qdb, "-v", "1"])]
        for step, argv in self.commands(qdb, str(work)):
            runs.append(run_tool(f"mmseqs {step}", argv))
        keys = _lookup(qdb)
        unpacked = {}
        for tag, name in OUTPUTS.items():
            if name not in self.outputs():
                continue
            out = work / f"unpacked_{tag}"
            runs.append(run_tool("mmseqs unpackdb", [self.binary, "unpackdb", str(work / f"{tag}.a3m"),
                                                     str(out), "--unpack-name-mode", "0",
                                                     "--unpack-suffix", ".a3m", "-v", "1"]))
            unpacked[name] = {keys[p.stem]: p for p in out.glob("*.a3m") if p.stem in keys}
        return unpacked, runs

    def search(self, queries: dict[str, str], out_dirs: dict[str, str | Path],
               work: str | Path | None = None) -> dict[str, dict]:
        """Search all ``queries`` (target id -> sequence) at once; write each target's A3Ms.

        Returns target id -> metrics (``status`` "ok") or ``{"status": "failed", "error"}``
        for a target whose result was empty or malformed; other targets are unaffected.
        A failing MMseqs2 step fails the whole batch with :class:`~eksfold.errors.ToolError`.
        """
        unique = sorted(set(queries.values()))
        index = {seq: i for i, seq in enumerate(unique)}   # identical chains searched once
        with tempfile.TemporaryDirectory(prefix="eksfold-mmseqs-", dir=work) as tmp:
            started = time.perf_counter()
            unpacked, runs = self.run_batch(unique, tmp)
            wall = time.perf_counter() - started
            batch = {"batch_size": len(queries), "batch_wall_s": round(wall, 3),
                     "batch_cpu_s": round(sum(r.cpu_s for r in runs), 3),
                     "tool_peak_rss_mb": max(r.peak_rss_mb for r in runs),
                     "steps": [asdict(r) for r in runs]}
            return {tid: self.collect(tid, seq, {n: files.get(index[seq])
                                                 for n, files in unpacked.items()},
                                      Path(out_dirs[tid]), batch)
                    for tid, seq in queries.items()}

    def collect(self, target_id: str, sequence: str, results: dict[str, Path | None],
                out_dir: Path, batch: dict) -> dict:
        """Check one target's unpacked A3Ms and write them (atomically) into ``out_dir``."""
        try:
            texts = {name: _checked_a3m(target_id, sequence, name, path)
                     for name, path in results.items()}
        except TargetError as exc:
            return {"status": "failed", "error": str(exc), "tool": self.name, **_share(batch)}
        out_dir.mkdir(parents=True, exist_ok=True)
        rows = {}
        for name, text in texts.items():
            tmp = out_dir / f".{name}.tmp"
            tmp.write_text(text)
            os.replace(tmp, out_dir / name)
            rows[name] = len(read_msa_sequences(out_dir / name))
        return {"status": "ok", "error": None, "tool": self.name, "layout": self.layout,
                "settings": self.settings(), "outputs": sorted(texts), "rows": rows,
                "msa_depth": max(rows.values()), **_share(batch)}

    def settings(self) -> dict:
        """What a run manifest records about this search."""
        return {"database": self.database, "layout": self.layout,
                "env_database": self.env_database, "sensitivity": self.sensitivity,
                "iterations": self.iterations, "max_seqs": self.max_seqs, "evalue": self.evalue}


def _share(batch: dict) -> dict:
    # A target's share of the batch, so per-target wall/CPU sum to the batch's.
    n = max(batch["batch_size"], 1)
    return {**batch, "wall_s": round(batch["batch_wall_s"] / n, 3),
            "cpu_s": round(batch["batch_cpu_s"] / n, 3)}


def _lookup(qdb: str) -> dict[str, int]:
    """DB key (as the unpacked file stem) -> query index, from createdb's ``.lookup`` TSV."""
    with open(f"{qdb}.lookup", newline="") as fh:
        return {row[0]: int(row[1][1:]) for row in csv.reader(fh, delimiter="\t")}


def _checked_a3m(target_id: str, sequence: str, name: str, path: Path | None) -> str:
    """The A3M text with the target id as the query's name; TargetError if unusable."""
    text = path.read_text(errors="replace").replace("\0", "") if path and path.is_file() else ""
    if not text.strip():
        raise TargetError(target_id, f"mmseqs2 returned an empty {name} (no alignment entry)")
    if not text.startswith(">"):
        raise TargetError(target_id, f"mmseqs2 {name} is not A3M (first line {text[:40]!r})")
    lines = text.splitlines()
    lines[0] = f">{target_id}"
    text = "\n".join(lines) + "\n"
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / name
        probe.write_text(text)
        check_alignments(Target(target_id, sequence), tmp)   # the query must come first
        for row, aligned in read_msa_sequences(probe).items():
            # Match columns: upper case and '-'; A3M rows must all have the query's length.
            width = sum(1 for ch in aligned if ch.isupper() or ch == "-")
            if width != len(sequence):
                raise TargetError(target_id, f"mmseqs2 {name}: row {row} has {width} match "
                                             f"columns, query has {len(sequence)} (malformed A3M)")
    return text
