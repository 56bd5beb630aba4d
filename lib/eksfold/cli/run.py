"""``eksfold run | status | summary | verify``: fold targets and look at a run."""
from __future__ import annotations

import dataclasses

from ..config import AlignConfig
from ..contracts import DEFAULT_PRESET, DEFAULT_WEIGHTS, ExitCode

def add_parsers(sub) -> None:
    _add_run(sub)
    p = sub.add_parser("status", help="unit states of a run")
    p.add_argument("root")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("summary", help="print (or --rebuild) a run's summary table")
    p.add_argument("root")
    p.add_argument("--rebuild", action="store_true", help="rebuild it from the unit records")
    p.add_argument("--references", help="folder of <pdb>.<chain>.pdb reference structures: "
                                        "rebuild with tm_score, gdt_ts, lddt_ca, rmsd")
    p.set_defaults(func=cmd_summary)
    p = sub.add_parser("verify", help="check every committed output against its recorded hash")
    p.add_argument("root")
    p.set_defaults(func=cmd_verify)


def cmd_verify(args) -> int:
    from ..verify import verify_run

    result = verify_run(args.root)
    for problem in result.problems:
        print(problem)
    print(f"{result.units} units, {result.files} files verified, {len(result.problems)} problem(s)")
    return ExitCode.OK if result.ok else ExitCode.FAILED


def _add_run(sub) -> None:
    p = sub.add_parser("run", help="fold the targets of a file or folder into a run root")
    p.add_argument("fasta", help="targets: FASTA (plain or gzip), a3m, ColabFold CSV/TSV "
                                 "(id,sequence), a folder of those, or a packaged set (cameo92)")
    p.add_argument("--root", required=True, help="run root: a directory or s3://bucket/prefix")
    p.add_argument("--preset", default=DEFAULT_PRESET,
                   help="model preset, which names the model family (eksfold.models): "
                        "model_1_ptm ... model_5, finetuning_*, 'demo', 'tiny'; '+long' suffix "
                        "for the long-sequence settings")
    p.add_argument("--weights", default=DEFAULT_WEIGHTS,
                   help="'random' (UNTRAINED, for runtime/memory only), a .pt/.npz file, an "
                        "s3:// URI, a published name such as finetuning_ptm_2, or 'auto': the "
                        "preset's published weights if the bucket ($EKSFOLD_WEIGHTS_BUCKET on "
                        "$EKSFOLD_S3_ENDPOINT) is reachable, else random, saying why")
    p.add_argument("--executor", default="local", choices=["local", "kubernetes"])
    p.add_argument("--stages", help="comma-separated stages to run (default: all of the run's)")
    relax = p.add_mutually_exclusive_group()
    relax.add_argument("--relax", dest="relax", action="store_true", default=None,
                       help="Amber-relax the predictions (default: on for trained weights)")
    relax.add_argument("--no-relax", dest="relax", action="store_false")
    p.add_argument("--settings", default="auto",
                   help="inference memory/speed setting: auto (per target and memory budget) "
                        "or a named setting")
    p.add_argument("--targets", help="comma-separated target ids to run (default: all)")
    p.add_argument("--limit", type=int, help="run only the first N selected targets")
    p.add_argument("--shortest", action="store_true", help="order targets by length first")
    p.add_argument("--max-length", type=int, help="skip targets longer than this")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--uniref90", help="FASTA database for jackhmmer (default: the one `make setup` "
                                      "built, or $EKSFOLD_DATABASE)")
    p.add_argument("--mgnify", help="second jackhmmer FASTA database")
    p.add_argument("--bfd", help="HH-suite database prefix for hhblits")
    p.add_argument("--uniclust30", help="second HH-suite database prefix for hhblits")
    p.add_argument("--uniprot", help="FASTA with UniProt headers: species-paired MSAs of "
                                     "heteromeric complexes (OpenFold3 presets; --msa mmseqs2 "
                                     "searches its MMseqs2 database DIR/mmseqs/STEM, or pass "
                                     "that prefix). "
                                     "Default: with the default databases, the one `make setup` "
                                     "built; with --uniref90 etc. and no --uniprot, unpaired")
    p.add_argument("--rfam", help="RNA FASTA (AlphaFold3's Rfam, or the stand-in `make setup` "
                                  "builds: data/db/rfam_standin.fasta): MSAs of the RNA chains of "
                                  "complexes, by nhmmer (OpenFold3 presets); without it RNA "
                                  "chains fold single-sequence")
    p.add_argument("--align-cpus", type=int, default=2, help="CPUs per alignment unit")
    p.add_argument("--msa", default="jackhmmer", choices=["jackhmmer", "mmseqs2"],
                   help="alignment mode: jackhmmer (+hhblits) or MMseqs2 (ColabFold-style)")
    p.add_argument("--mmseqs-db", help="MMseqs2 database prefix (default: the one make test-setup built)")
    p.add_argument("--mmseqs-layout", default="plain", choices=["plain", "colabfold"])
    p.add_argument("--mmseqs-sensitivity", type=float, default=AlignConfig.mmseqs_sensitivity,
                   help="MMseqs2 -s (ColabFold's 8; 5.7 found 98.6 %% of jackhmmer's hits at "
                        "a fifth of -s 8's CPU at 4 M sequences: profiles/cpu-2core/align.json)")
    p.add_argument("--mmseqs-iterations", type=int, default=AlignConfig.mmseqs_iterations)
    p.add_argument("--mmseqs-max-seqs", type=int, default=AlignConfig.mmseqs_max_seqs)
    p.add_argument("--msa-cache", help="MSA cache root (directory, /fsx path or s3://): reuse "
                                       "alignments of the same sequence, mode and database")
    p.add_argument("--precomputed", nargs="?", const="", metavar="SOURCE",
                   help="reuse OpenFold's precomputed alignments of the target's PDB chain when "
                        "they match (default source s3://openfold/pdb)")
    _add_template_options(p)   # templates (#20)
    p.add_argument("--align-workers", type=int, default=1, help="concurrent alignment units (local)")
    p.add_argument("--infer-workers", type=int, default=1, help="warm inference workers (local)")
    p.add_argument("--infer-memory-mb", type=float,
                   help="memory limit of each inference worker, as its own cgroup (local, root)")
    p.set_defaults(func=cmd_run)


def _add_template_options(p) -> None:
    from ..config import TemplateConfig

    g = p.add_argument_group("templates (OpenFold's template search and featurisation)")
    on = g.add_mutually_exclusive_group()
    on.add_argument("--templates", dest="templates", action="store_const", const="on",
                    default="auto", help="use templates (default: on for presets trained with "
                                         "them when template databases are configured)")
    on.add_argument("--no-templates", dest="templates", action="store_const", const="off")
    g.add_argument("--template-search", default="auto", choices=["auto", "hhsearch", "hmmsearch"],
                   help="hhsearch against PDB70 (AF2 monomer) or hmmsearch against pdb_seqres "
                        "(default auto: the preset's; OpenFold3 reads hmmsearch's hits only)")
    g.add_argument("--max-template-date", help="YYYY-MM-DD: newest template release date "
                                               "(default: today, as OpenFold)")
    g.add_argument("--pdb70", help="PDB70 HH-suite database prefix (hhsearch)")
    g.add_argument("--pdb-seqres", help="pdb_seqres.txt (hmmsearch)")
    g.add_argument("--template-mmcif-dir", help="folder of <pdb_id>.cif template structures")
    g.add_argument("--obsolete-pdbs", help="the PDB's obsolete.dat (obsolete-entry mapping)")
    g.add_argument("--release-dates", help="OpenFold's release-dates JSON (optional)")
    g.add_argument("--kalign", default=TemplateConfig.kalign, help="kalign binary (realignment)")


def _template_config(args):
    from ..config import TemplateConfig

    extra = {"max_template_date": args.max_template_date} if args.max_template_date else {}
    return TemplateConfig(enabled=args.templates, search=args.template_search,
                          release_dates=args.release_dates, kalign=args.kalign, **extra)


def cmd_run(args) -> int:
    from ..config import AlignConfig, DatabaseConfig, default_databases
    from ..pipeline import run_pipeline
    from ..results import load_summary
    from ..weights_choice import choose_weights

    # First line of the output: what the run folds with (and why, when it is untrained).
    weights = choose_weights(args.weights, args.preset)
    print(weights.line(), flush=True)
    dbs = DatabaseConfig(uniref90=args.uniref90, mgnify=args.mgnify, bfd=args.bfd,
                         uniclust30=args.uniclust30)
    if not dbs.configured():
        dbs = default_databases()
    if args.uniprot:
        dbs = dataclasses.replace(dbs, uniprot=args.uniprot)
    if args.rfam:
        dbs = dataclasses.replace(dbs, rfam=args.rfam)
    template_dbs = {k: getattr(args, k) for k in ("pdb70", "pdb_seqres", "template_mmcif_dir",
                                                  "obsolete_pdbs") if getattr(args, k)}
    dbs = dataclasses.replace(dbs, **template_dbs)
    options = ({"align_workers": args.align_workers, "infer_workers": args.infer_workers,
                "infer_memory_mb": args.infer_memory_mb}
               if args.executor == "local" else {})
    run = run_pipeline(args.fasta, args.root, preset=args.preset, weights=weights,
                       relax=args.relax, settings=args.settings,
                       templates=_template_config(args), databases=dbs, align=AlignConfig(
                           cpus=args.align_cpus, use_precomputed=args.precomputed is not None,
                           precomputed_source=args.precomputed or None, msa_mode=args.msa,
                           mmseqs_db=args.mmseqs_db, mmseqs_layout=args.mmseqs_layout,
                           mmseqs_sensitivity=args.mmseqs_sensitivity,
                           mmseqs_iterations=args.mmseqs_iterations,
                           mmseqs_max_seqs=args.mmseqs_max_seqs,
                           cache=args.msa_cache),
                       device=args.device, seed=args.seed, executor=args.executor,
                       executor_options=options,
                       stages=tuple(args.stages.split(",")) if args.stages else None,
                       ids=args.targets.split(",") if args.targets else None, limit=args.limit,
                       shortest=args.shortest, max_length=args.max_length)
    df = load_summary(run.root)
    _print_table(df)
    if weights.untrained:
        print("NOTE: UNTRAINED random weights - structures and pLDDT are meaningless; "
              "runtime and memory figures are real.")
    print(f"summary: {run.store.uri('summary.csv')}")
    return run_exit_code(df, run.stages)


def run_exit_code(df, stages) -> int:
    """0 every unit of the run done; 1 some failed, blocked or not run; 3 only refused records."""
    status = df[[f"{s}_status" for s in stages if f"{s}_status" in df]]
    invalid = (status == "invalid").all(axis=1)
    if not (status[~invalid] == "done").all(axis=None):
        return ExitCode.FAILED
    return ExitCode.SOME_INVALID if invalid.any() else ExitCode.OK


def _print_table(df) -> None:
    cols = ["target", "length", "align_status", "align_wall_s", "msa_depth", "infer_status",
            "inference_s", "infer_peak_rss_mb", "mean_plddt", "tm_score", "lddt_ca", "error"]
    with __import__("pandas").option_context("display.width", 160, "display.max_colwidth", 60):
        print(df[[c for c in cols if c in df]].to_string(index=False))


def cmd_status(args) -> int:
    from collections import Counter

    from ..executors import plan
    from ..run import Run

    run = Run.open(args.root)
    status = plan(run)
    for stage in dict.fromkeys(s for s, _ in status):
        counts = Counter(st for (s, _), st in status.items() if s == stage)
        print(f"[{stage}] " + ", ".join(f"{n} {st}" for st, n in sorted(counts.items())))
    for (stage, tid), st in status.items():
        if st == "failed":
            print(f"{stage} {tid}: failed: {run.record(stage, tid).error}")
    return 0


def cmd_summary(args) -> int:
    from ..results import load_summary, write_summary
    from ..run import Run

    if args.rebuild or args.references:
        df = write_summary(Run.open(args.root), references_dir=args.references)
    else:
        df = load_summary(args.root)
    _print_table(df)
    return 0


