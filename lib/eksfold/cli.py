"""The ``eksfold`` command. Each subcommand gathers options and makes one library call."""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys

from .errors import EksfoldError


def _add_run(sub) -> None:
    p = sub.add_parser("run", help="fold the targets of a FASTA file into a run root")
    p.add_argument("fasta", help="FASTA file of targets (e.g. data/cameo92/targets.fasta)")
    p.add_argument("--root", required=True, help="run root: a directory or s3://bucket/prefix")
    p.add_argument("--preset", default="model_1_ptm",
                   help="model preset: OpenFold's (model_1_ptm, ...), 'demo', 'tiny'; '+long' "
                        "suffix for the long-sequence settings")
    p.add_argument("--weights", default="random",
                   help="'random' (UNTRAINED, for runtime/memory only), a .pt/.npz file, an "
                        "s3:// URI or a published name such as finetuning_ptm_2")
    p.add_argument("--executor", default="local", choices=["local", "kubernetes"])
    p.add_argument("--stages", default="align,infer", help="comma-separated stages to run")
    p.add_argument("--targets", help="comma-separated target ids to run (default: all)")
    p.add_argument("--limit", type=int, help="run only the first N selected targets")
    p.add_argument("--shortest", action="store_true", help="order targets by length first")
    p.add_argument("--max-length", type=int, help="skip targets longer than this")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--uniref90", help="FASTA database for jackhmmer (default: data/db, built by make setup)")
    p.add_argument("--mgnify", help="second jackhmmer FASTA database")
    p.add_argument("--bfd", help="HH-suite database prefix for hhblits")
    p.add_argument("--uniclust30", help="second HH-suite database prefix for hhblits")
    p.add_argument("--align-cpus", type=int, default=2, help="CPUs per alignment unit")
    p.add_argument("--precomputed", nargs="?", const="", metavar="SOURCE",
                   help="reuse OpenFold's precomputed alignments of the target's PDB chain when "
                        "they match (default source s3://openfold/pdb)")
    p.add_argument("--align-workers", type=int, default=1, help="concurrent alignment units (local)")
    p.add_argument("--infer-workers", type=int, default=1, help="concurrent inference units (local)")
    p.set_defaults(func=cmd_run)


def cmd_run(args) -> int:
    from .config import AlignConfig, DatabaseConfig, default_databases
    from .pipeline import run_pipeline
    from .results import load_summary

    dbs = DatabaseConfig(uniref90=args.uniref90, mgnify=args.mgnify, bfd=args.bfd,
                         uniclust30=args.uniclust30)
    if not dbs.configured():
        dbs = default_databases()
    options = ({"align_workers": args.align_workers, "infer_workers": args.infer_workers}
               if args.executor == "local" else {})
    run = run_pipeline(args.fasta, args.root, preset=args.preset, weights=args.weights,
                       databases=dbs, align=AlignConfig(cpus=args.align_cpus,
                                         use_precomputed=args.precomputed is not None,
                                         precomputed_source=args.precomputed or None),
                       device=args.device, seed=args.seed, executor=args.executor,
                       executor_options=options, stages=tuple(args.stages.split(",")),
                       ids=args.targets.split(",") if args.targets else None, limit=args.limit,
                       shortest=args.shortest, max_length=args.max_length)
    df = load_summary(run.root)
    _print_table(df)
    if args.weights.startswith("random"):
        print("NOTE: UNTRAINED random weights - structures and pLDDT are meaningless; "
              "runtime and memory figures are real.")
    print(f"summary: {run.store.uri('summary.csv')}")
    return 0 if (df["infer_status"] == "done").all() else 1


def _print_table(df) -> None:
    cols = ["target", "length", "align_status", "align_wall_s", "msa_depth", "infer_status",
            "inference_s", "infer_peak_rss_mb", "mean_plddt", "tm_score", "lddt_ca", "error"]
    with __import__("pandas").option_context("display.width", 160, "display.max_colwidth", 60):
        print(df[[c for c in cols if c in df]].to_string(index=False))


def cmd_status(args) -> int:
    from collections import Counter

    from .executors import plan
    from .run import Run

    run = Run.open(args.root)
    status = plan(run)
    for stage in dict.fromkeys(s for s, _ in status):
        counts = Counter(st for (s, _), st in status.items() if s == stage)
        print(f"[{stage}] " + ", ".join(f"{n} {st}" for st, n in sorted(counts.items())))
    for (stage, tid), st in status.items():
        if st == "failed":
            print(f"{stage} {tid}: failed: {(run.unit_metrics(stage, tid) or {}).get('error')}")
    return 0


def cmd_summary(args) -> int:
    from .results import load_summary, write_summary
    from .run import Run

    if args.rebuild or args.references:
        df = write_summary(Run.open(args.root), references_dir=args.references)
    else:
        df = load_summary(args.root)
    _print_table(df)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eksfold", description="OpenFold at scale: run, monitor, analyse.")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run(sub)
    p = sub.add_parser("status", help="unit states of a run")
    p.add_argument("root")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("summary", help="print (or --rebuild) a run's summary table")
    p.add_argument("root")
    p.add_argument("--rebuild", action="store_true", help="rebuild it from the units' metrics")
    p.add_argument("--references", help="folder of <pdb>.<chain>.pdb reference structures: "
                                        "rebuild with tm_score, gdt_ts, lddt_ca, rmsd")
    p.set_defaults(func=cmd_summary)
    for module, fn in (("eksfold.data.cli", "add_data_parser"), ("eksfold.report", "add_report_parser"),
                       ("eksfold.bench", "add_bench_parser"), ("eksfold.k8s.cli", "add_k8s_parser")):
        if importlib.util.find_spec(module) is not None:  # parts added by later modules
            getattr(importlib.import_module(module), fn)(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except EksfoldError as exc:
        print(f"eksfold: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("eksfold: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
