"""Pairing benchmark: what the UniProt search of a heteromer's chain costs beside its own MSA.

    eksfold bench pairing --lengths 50,100,200,300,400 --csv lib/eksfold/profiles/cpu-2core/pairing.csv

For each query (the real target of ``--targets`` nearest each length), in each MSA mode, the
align stage's two searches of one complex chain with the stage's own settings
(:class:`~eksfold.config.AlignConfig` defaults), one after the other, against the same database
(the stand-in is both the uniref90 and the uniprot role): the chain's MSA (jackhmmer of
uniref90; MMseqs2, one query per search as for complex chains) and its UniProt search for
pairing (jackhmmer with ``uniprot_max_hits``; :class:`~eksfold.alignment.uniprot_mmseqs.
UniProtMMseqs2`). ``ratio`` is the UniProt search's CPU seconds over the MSA's: the planner
prices a heteromer chain's pairing search as that ratio of the chain's align unit
(:mod:`eksfold.planner.pairing`).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from .common import parse_lengths, synthetic_sequence

MODES = ("jackhmmer", "mmseqs2")


def _searches(mode: str, database: str, mmseqs_db: str, cpus: int):
    """(the chain's MSA search, its UniProt search) as callables (query, sequence, folder) ->
    (wall_s, cpu_s, rows of the UniProt file or None)."""
    from ..alignment.hmmer import Jackhmmer
    from ..alignment.mmseqs import MMseqs2Search
    from ..alignment.msa import read_msa_sequences
    from ..alignment.uniprot_mmseqs import UNIPROT_A3M, UniProtMMseqs2
    from ..config import AlignConfig

    cfg = AlignConfig(cpus=cpus)
    if mode == "jackhmmer":
        tools = (Jackhmmer(database, cpus, cfg.jackhmmer_iterations, cfg.evalue,
                           cfg.uniref90_max_hits),
                 Jackhmmer(database, cpus, cfg.jackhmmer_iterations, cfg.evalue,
                           cfg.uniprot_max_hits))

        def run(tool, name, seq, folder):
            query = folder / "q.fasta"
            query.write_text(f">{name}\n{seq}\n")
            r = tool.run(query, folder / "hits.sto")
            return r.wall_s, r.cpu_s, len(read_msa_sequences(folder / "hits.sto")) - 1
    else:
        tools = (MMseqs2Search(database=mmseqs_db, sensitivity=cfg.mmseqs_sensitivity,
                               iterations=cfg.mmseqs_iterations, max_seqs=cfg.mmseqs_max_seqs,
                               cpus=cpus),
                 UniProtMMseqs2(database=mmseqs_db, sensitivity=cfg.mmseqs_sensitivity,
                                max_seqs=cfg.uniprot_max_hits, cpus=cpus))

        def run(tool, name, seq, folder):
            r = tool.search({name: seq}, {name: folder}, work=folder)[name]
            if r["status"] != "ok":
                raise RuntimeError(r["error"])
            out = folder / (UNIPROT_A3M if isinstance(tool, UniProtMMseqs2) else r["outputs"][0])
            return r["batch_wall_s"], r["batch_cpu_s"], len(read_msa_sequences(out)) - 1
    return [lambda name, seq, folder, t=t: run(t, name, seq, folder) for t in tools]


def pairing_benchmark(lengths, database: str, mmseqs_db: str, cpus: int = 2,
                      targets_fasta: str | None = None, modes=MODES):
    """One row per (mode, query): the MSA's and the UniProt search's wall/CPU seconds."""
    import pandas as pd

    from ..target_files import read_fasta

    pool = read_fasta(targets_fasta) if targets_fasta and Path(targets_fasta).exists() else []
    rows = []
    with tempfile.TemporaryDirectory(prefix="eksfold-bench-pairing-") as tmp:
        for mode in modes:
            msa, uniprot = _searches(mode, database, mmseqs_db, cpus)
            for length in lengths:
                near = min(pool, key=lambda t: abs(t.length - length)) if pool else None
                name, seq = ((near.id, near.sequence) if near
                             else (f"synthetic-{length}", synthetic_sequence(length)))
                folders = [Path(tmp) / mode / name / part for part in ("msa", "uniprot")]
                for folder in folders:
                    folder.mkdir(parents=True, exist_ok=True)
                m_wall, m_cpu, m_rows = msa(name, seq, folders[0])
                u_wall, u_cpu, u_rows = uniprot(name, seq, folders[1])
                rows.append({"mode": mode, "query": name, "length": len(seq),
                             "msa_wall_s": round(m_wall, 3), "msa_cpu_s": round(m_cpu, 3),
                             "msa_hits": m_rows, "uniprot_wall_s": round(u_wall, 3),
                             "uniprot_cpu_s": round(u_cpu, 3), "uniprot_hits": u_rows,
                             "ratio": round(u_cpu / m_cpu, 3) if m_cpu else None})
    return pd.DataFrame(rows)


def add_parser(bsub) -> None:
    a = bsub.add_parser("pairing", help="UniProt search for pairing vs the chain's own MSA")
    a.add_argument("--lengths", default="50,100,200,300,400")
    a.add_argument("--database", default="data/db/uniprot20k.fasta")
    a.add_argument("--mmseqs-db", default="data/db/mmseqs/uniprot20k")
    a.add_argument("--modes", default=",".join(MODES))
    a.add_argument("--cpus", type=int, default=2)
    a.add_argument("--targets", default="data/cameo92/targets.fasta",
                   help="queries: the targets nearest each length")
    a.add_argument("--csv", help="write the table here (profiles/<machine>/pairing.csv)")
    a.set_defaults(func=_cmd_pairing)


def _cmd_pairing(args) -> int:
    df = pairing_benchmark(parse_lengths(args.lengths), args.database, args.mmseqs_db,
                           args.cpus, args.targets, modes=tuple(args.modes.split(",")))
    print(f"pairing benchmark: {args.database} / {args.mmseqs_db}, {args.cpus} CPUs")
    print(df.to_string(index=False))
    for mode, part in df.groupby("mode"):
        print(f"{mode}: UniProt search / chain MSA, CPU seconds summed: "
              f"{part.uniprot_cpu_s.sum() / part.msa_cpu_s.sum():.3f}")
    if args.csv:
        df.to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    return 0
