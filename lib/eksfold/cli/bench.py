"""``eksfold bench ...``: benchmarks that print tables (one module of eksfold.bench each)."""
from __future__ import annotations

import importlib

from ..bench import BENCHMARKS


def add_parsers(sub) -> None:
    p = sub.add_parser("bench", help="benchmarks that print tables (" + ", ".join(BENCHMARKS) + ")")
    bsub = p.add_subparsers(dest="bench", required=True)
    for name in BENCHMARKS:
        importlib.import_module(f"eksfold.bench.{name}").add_parser(bsub)
