"""Template search cost per target, next to the alignment it follows.

    eksfold bench templates --profile cpu-2core     # profiles/cpu-2core/templates.csv

For every CAMEO 2022 target (``data/cameo2022``): the align stage's jackhmmer search of the
sequence database, then each template route on its MSA, each program measured by the Tool
lifecycle (wall, CPU): HHsearch against PDB70 and hmmbuild + hmmsearch against pdb_seqres.
The ratio columns are template search / alignment for the same target, measured in one run.
The databases are the installation's: the 20,000-sequence UniProt FASTA and the stand-in
template databases built from the 12 CAMEO structures; with full-size databases both sides
grow (UniRef90: ~10^4 x the sequences; PDB70: ~10^4 x the HMMs), so read the table as the
overhead of the search machinery here, not as a forecast for the full databases.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from .common import format_table


def measure(database: str, template_root: str, cpus: int = 2, limit: int | None = None):
    """One row per target: alignment and both template searches, measured."""
    import pandas as pd

    from ..config import AlignConfig, DatabaseConfig, TemplateConfig
    from ..site import target_set
    from ..stages.align import align_target
    from ..target_files import read_fasta
    from ..templates import standin
    from ..templates.search import TemplateSearch

    dbs = DatabaseConfig(uniref90=database, **standin.paths(template_root))
    rows = []
    targets = sorted(read_fasta(target_set("cameo2022")), key=lambda t: t.length)[:limit]
    with tempfile.TemporaryDirectory(prefix="eksfold-bench-templates-") as tmp:
        for target in targets:
            out = Path(tmp) / target.id / "align"
            m = align_target(target, dbs, AlignConfig(cpus=cpus), out,
                             templates=TemplateConfig(enabled="on", search="hhsearch"))
            h = TemplateSearch("hmmsearch", dbs, cpus).run(target, out)
            rows.append({"target": target.id, "length": target.length,
                         "msa_depth": m["msa_depth"],
                         "align_wall_s": m["tool_wall_s"], "align_cpu_s": m["cpu_s"],
                         "hhsearch_wall_s": m["template_search_wall_s"],
                         "hhsearch_cpu_s": m["template_search_cpu_s"],
                         "hhsearch_hits": m["template_hits"],
                         "hmmsearch_wall_s": h["template_search_wall_s"],
                         "hmmsearch_cpu_s": h["template_search_cpu_s"],
                         "hmmsearch_hits": h["template_hits"]})
    df = pd.DataFrame(rows)
    for route in ("hhsearch", "hmmsearch"):
        df[f"{route}_vs_align_wall"] = (df[f"{route}_wall_s"] / df["align_wall_s"]).round(3)
    return df


def add_parser(sub) -> None:
    p = sub.add_parser("templates", help="template search cost per target vs its alignment")
    p.add_argument("--database", help="FASTA for jackhmmer (default: the installation's)")
    p.add_argument("--template-db", help="template database root (default: make setup's stand-in)")
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--limit", type=int)
    p.add_argument("--profile", help="write profiles/<PROFILE>/templates.csv")
    p.set_defaults(func=cmd)


def cmd(args) -> int:
    from ..errors import ConfigError
    from ..site import default_database
    from ..templates.settings import default_template_databases

    database = args.database or (str(default_database()) if default_database() else None)
    root = args.template_db or (str(Path(default_template_databases()["pdb70"]).parents[1])
                                if default_template_databases() else None)
    if not database or not root:
        raise ConfigError("needs the sequence database and the template databases: make setup, "
                          "or pass --database and --template-db")
    df = measure(database, root, args.cpus, args.limit)
    print(format_table(df, ["align_wall_s", "hhsearch_wall_s", "hmmsearch_wall_s"]))
    totals = df[["align_wall_s", "hhsearch_wall_s", "hmmsearch_wall_s"]].sum()
    print(f"total wall: alignment {totals.align_wall_s:.1f} s, hhsearch {totals.hhsearch_wall_s:.1f} s "
          f"({totals.hhsearch_wall_s / totals.align_wall_s:.2f}x), hmmsearch "
          f"{totals.hmmsearch_wall_s:.1f} s ({totals.hmmsearch_wall_s / totals.align_wall_s:.2f}x)")
    if args.profile:
        from importlib.resources import files
        path = Path(str(files("eksfold"))) / "profiles" / args.profile / "templates.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(path, index=False)
        print(f"wrote {path}")
    return 0
