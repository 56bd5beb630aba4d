"""``eksfold plan TARGETS``: predicted schedule, wall time and cost of a run, before launching it.

    eksfold plan data/cameo92/targets.fasta --msa mmseqs2 --spot --deadline 45m
    eksfold plan targets.fasta --cluster my-cluster.yaml --budget 50 --json plan.json
    eksfold plan targets.fasta --local --infer-workers 2          # this machine, local executor
    eksfold plan data/cameo92/targets.fasta --validate-local --out /tmp/val   # predict, run, compare
"""
from __future__ import annotations

import argparse
import json


def cmd_plan(args) -> int:
    """One call to :func:`eksfold.planner.plan` (or the local validation)."""
    from .. import planner

    if args.validate_local:
        from ..planner.validate import validate_local

        df = validate_local(args.targets, args.out or "runs/plan-validation", preset=args.preset,
                            limit=args.limit, calibration=args.calibration, small=args.small,
                            mixed=args.mixed, max_length=args.max_length)
        print(df.to_string(index=False))
        print("calibration:", json.dumps(df.attrs["calibration"]))
        if args.json:
            with open(args.json, "w") as fh:
                json.dump({"sets": df.to_dict("records"), "calibration": df.attrs["calibration"]},
                          fh, indent=2)
        return 0
    result = planner.plan(args.targets, cluster=args.cluster, profile=args.profile,
                          msa_mode=args.msa, spot=args.spot, deadline=args.deadline,
                          objective="cost" if args.cheapest else "nodes",
                          budget=args.budget, relax=args.relax, local=args.local,
                          workers={"align": args.align_workers, "infer": args.infer_workers},
                          batch_window=args.batch_window, limit=args.limit,
                          mmseqs_sensitivity=args.mmseqs_sensitivity,
                          mmseqs_index_gib=args.mmseqs_index_gib,
                          msa_cache_hit=args.msa_cache_hit, templates=_template_route(args),
                          score=args.score, preset=args.preset)
    print(result.summary())
    if result.settings.get("executor_options"):
        print("executor options for `eksfold run --executor kubernetes`: "
              + json.dumps(result.settings["executor_options"]))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result.to_dict(), fh, indent=1)
    if args.save:
        print("saved", planner.save_plan(args.save, result))
    return 0


def _template_route(args) -> str | None:
    """The template search the planned run does: --templates/--no-templates, else the preset's
    default (on for presets trained with templates, as ``eksfold run`` with template databases)."""
    from ..models import get_backend

    backend = get_backend(args.preset)
    wanted = args.templates
    if wanted is None:
        wanted = backend.uses_templates(None)
    route = (backend.template_routes[0] if args.template_search == "auto"
             else args.template_search)
    return route if wanted else None


def add_parsers(sub) -> None:
    """Register ``eksfold plan`` on the CLI's sub-command parsers."""
    p = sub.add_parser("plan", help="predict a run's schedule, wall time and cost before launching it")
    p.add_argument("targets", help="FASTA file (or packaged set name) of the targets")
    p.add_argument("--cluster", help="cluster YAML (default: the NodePools in cluster/ with the "
                                     "shipped price table)")
    p.add_argument("--profile", help="reference cost profile (default reference-af2-v100)")
    p.add_argument("--msa", default="jackhmmer", choices=["jackhmmer", "mmseqs2"])
    p.add_argument("--spot", action="store_true", help="spot prices where a pool allows spot")
    p.add_argument("--deadline", help="plan the smallest cluster that finishes within this "
                                      "(e.g. 45m, 8h, 2d)")
    p.add_argument("--cheapest", action="store_true",
                   help="with --deadline: the cheapest cluster that meets it (default: the one "
                        "with the fewest nodes, which can cost more: GPU nodes wait for fewer "
                        "alignment nodes)")
    p.add_argument("--budget", type=float, help="plan the fastest cluster within this many USD")
    p.add_argument("--relax", action="store_true", help="include Amber relaxation")
    p.add_argument("--score", action="store_true",
                   help="include the optional score stage (targets with reference structures)")
    p.add_argument("--templates", action=argparse.BooleanOptionalAction, default=None,
                   help="include the template search in the align time (default: when --preset "
                        "was trained with templates)")
    p.add_argument("--template-search", default="auto", choices=["auto", "hhsearch", "hmmsearch"],
                   help="the template search route whose measured time is added")
    p.add_argument("--batch-window", type=float, help="plan the classic Kubernetes executor with "
                                                      "this inference batch window, seconds "
                                                      "(default: the streaming executor)")
    p.add_argument("--mmseqs-sensitivity", type=float,
                   help="MMseqs2 -s of the run (default: the align benchmark's choice)")
    p.add_argument("--mmseqs-index-gib", type=float,
                   help="MMseqs2 database index size: alignment Pods ask for its memory")
    p.add_argument("--msa-cache-hit", type=float, default=0.0,
                   help="fraction of targets whose MSA is already cached (an assumption)")
    p.add_argument("--limit", type=int, help="plan only the first N targets")
    p.add_argument("--local", action="store_true", help="plan the local executor on this machine")
    p.add_argument("--align-workers", type=int, default=1)
    p.add_argument("--infer-workers", type=int, default=1)
    p.add_argument("--json", help="write the plan (or the validation) as JSON here")
    p.add_argument("--save", metavar="ROOT", help="save the plan into a run root as plan.json")
    v = p.add_argument_group("validation against a local run")
    v.add_argument("--validate-local", action="store_true",
                   help="calibrate this machine, predict two target sets, run them, compare")
    v.add_argument("--out", help="folder for the validation's run roots")
    v.add_argument("--preset", default="tiny", help="model preset of the validation runs (and "
                                                    "whose template default the plan follows)")
    v.add_argument("--calibration", type=int, default=4, help="calibration targets")
    v.add_argument("--small", type=int, default=8, help="targets in set A (the shortest)")
    v.add_argument("--mixed", type=int, default=6, help="targets in set B (a length mix)")
    v.add_argument("--max-length", type=int, default=450, help="longest target used")
    p.set_defaults(func=cmd_plan)


if __name__ == "__main__":   # `python -m eksfold.cli.plan ...` works before `eksfold plan` is wired
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="eksfold")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    parsed = parser.parse_args(["plan", *sys.argv[1:]])
    from ..contracts import ExitCode
    from ..errors import EksfoldError

    try:
        sys.exit(parsed.func(parsed))
    except EksfoldError as exc:
        print(f"eksfold: error: {exc}", file=sys.stderr)
        sys.exit(ExitCode.BAD_INPUT)
