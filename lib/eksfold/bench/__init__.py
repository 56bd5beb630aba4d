"""Benchmarks: commands that print tables of measured figures (``eksfold bench ...``).

One module per benchmark; each has ``add_parser(bench_subparsers)``. Absolute times depend on
the machine: compare ratios and fitted exponents measured side by side in one run. Figures
that the notebooks and the planner read are committed as CSV under ``eksfold/profiles/``.
"""
from __future__ import annotations

# name -> module; each module's add_parser() registers its subcommand
BENCHMARKS = ("inference", "align", "overhead", "settings", "relax", "templates", "warm",
              "pairing", "hostmem")


def __getattr__(name):
    # `from eksfold import bench; bench.inference_benchmark(...)` as before the split
    import importlib
    for module in ("inference", "align", "common"):
        module = importlib.import_module(f"{__name__}.{module}")
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(name)
