"""The ``eksfold`` command, one module per command group; each subcommand gathers options and
makes one library call. Exit codes: :class:`eksfold.contracts.ExitCode` (README, "Exit codes").
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ..contracts import ExitCode
from ..errors import EksfoldError

GROUPS = ("run", "data", "report", "bench", "plan")   # cli/<group>.py, each with add_parsers(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eksfold", description="OpenFold at scale: run, monitor, analyse.")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        importlib.import_module(f"{__name__}.{group}").add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except EksfoldError as exc:
        print(f"eksfold: error: {exc}", file=sys.stderr)
        # a fault that passes (a full disk, an outage) is retryable; the rest is usage/config
        return ExitCode.FAILED if getattr(exc, "retryable", False) else ExitCode.BAD_INPUT
    except KeyboardInterrupt:
        print("eksfold: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
