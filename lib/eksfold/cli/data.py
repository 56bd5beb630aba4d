"""``eksfold data ...``: weights, precomputed alignments, databases, references, transfer bench.

Each subcommand gathers options and makes one library call.
"""
from __future__ import annotations

import argparse
import sys


def add_parsers(subparsers) -> argparse.ArgumentParser:
    data = subparsers.add_parser("data", help="download weights, alignments, databases, references")
    sub = data.add_subparsers(dest="data_command", required=True)

    p = sub.add_parser("weights", help="download OpenFold parameters into the weights cache")
    p.add_argument("names", nargs="*", default=["finetuning_ptm_2"],
                   help="published names (finetuning_ptm_2, ...), s3:// or https:// URIs, or 'all'")
    p.add_argument("--cache", help="cache directory (default $EKSFOLD_CACHE/weights; /fsx/weights/openfold on the cluster)")
    p.add_argument("--bucket", help="where published names live (default s3://openfold/openfold_params)")
    p.add_argument("--sha256", help="expected SHA-256 (one name only)")
    p.add_argument("--verify", action="store_true", help="rehash files already in the cache")
    p.add_argument("--list", action="store_true", help="list the published names and exit")
    p.set_defaults(func=cmd_weights)

    p = sub.add_parser("alignments", help="fetch OpenFold's precomputed alignments for PDB chains")
    p.add_argument("chains", nargs="+", help="PDB chains as PDBID_CHAIN or PDBID:CHAIN (7elf_C)")
    p.add_argument("--out", required=True, help="directory; each chain goes to OUT/<pdbid>_<chain>/")
    p.add_argument("--source", help="base URI (default s3://openfold/pdb)")
    p.set_defaults(func=cmd_alignments)

    p = sub.add_parser("databases", help="show or download the sequence databases of a mode")
    p.add_argument("action", choices=["show", "prepare"])
    p.add_argument("--mode", default="reduced", help="reduced, full or casp14")
    p.add_argument("--dest", help="database root for 'prepare' (the cluster uses /fsx/db)")
    p.add_argument("--mirror", help="read from your copy: s3://bucket/prefix laid out <db>/<file>")
    p.add_argument("--only", help="comma-separated database names")
    p.add_argument("--keep-archives", action="store_true")
    p.set_defaults(func=cmd_databases)

    p = sub.add_parser("references", help="fetch experimental structures of PDB chains")
    p.add_argument("inputs", nargs="+", help="FASTA files with pdbid/chain headers (CAMEO), or PDBID:CHAIN")
    p.add_argument("--out", required=True, help="directory for <pdb>.<chain>.pdb files")
    p.add_argument("--base-url", help="URL template with {pdb}/{PDB}/{mid} (default RCSB)")
    p.set_defaults(func=cmd_references)

    return data


def _pair(text: str) -> tuple[str, str]:
    for sep in (":", "_", "."):
        if sep in text:
            pdb, chain = text.split(sep, 1)
            return pdb, chain
    raise SystemExit(f"eksfold data: {text!r} is not PDBID:CHAIN")


def cmd_weights(args) -> int:
    from ..data.weights import OPENFOLD_PARAMS, cache_dir, download_weights
    if args.list:
        print("\n".join(OPENFOLD_PARAMS))
        return 0
    names = list(OPENFOLD_PARAMS) if args.names == ["all"] else args.names
    for name in names:
        r = download_weights(name, args.cache, bucket=args.bucket, sha256=args.sha256,
                             verify=args.verify)
        state = "present" if r.skipped else (f"resumed from {r.resumed_from} B" if r.resumed_from
                                             else "downloaded")
        print(f"{r.path}  {r.size / 2**20:.1f} MiB  sha256 {r.sha256}  ({state})")
    print(f"cache: {cache_dir(args.cache)}")
    return 0


def cmd_alignments(args) -> int:
    from pathlib import Path

    from ..data.alignments import chain_name, fetch_alignments
    missing = 0
    for text in args.chains:
        pdb, chain = _pair(text)
        got = fetch_alignments(pdb, chain, Path(args.out) / chain_name(pdb, chain), source=args.source)
        print(f"{chain_name(pdb, chain)}: {got if got else 'no precomputed alignments'}")
        missing += got is None
    return 1 if missing else 0


def cmd_databases(args) -> int:
    from ..data.databases import describe
    from ..data.prepare import prepare_databases
    if args.action == "show":
        print(describe(args.mode))
        return 0
    if not args.dest:
        raise SystemExit("eksfold data databases prepare: --dest is required")
    for r in prepare_databases(args.mode, args.dest, mirror=args.mirror,
                               only=args.only.split(",") if args.only else None,
                               keep_archives=args.keep_archives):
        print(f"{r.name:<16}{'present' if r.skipped else f'ready in {r.seconds:.0f} s'}  {r.path}")
    return 0


def cmd_references(args) -> int:
    from pathlib import Path

    from ..data.references import fetch_references
    from ..target_files import parse_fasta
    pairs = []
    for item in args.inputs:
        if Path(item).is_file():
            errors: list = []
            pairs += [(t.pdb_id, t.chain) for t in parse_fasta(Path(item).read_text(), item, errors)
                      if t.pdb_id and t.chain]
        else:
            pairs.append(_pair(item))
    results = fetch_references(pairs, args.out, base_url=args.base_url)
    failed = {k: v for k, v in results.items() if isinstance(v, Exception)}
    for key, err in failed.items():
        print(f"{key}: {err}", file=sys.stderr)
    print(f"{len(results) - len(failed)} of {len(results)} references in {args.out}")
    return 1 if failed else 0
