"""Template search seconds per target: the term the alignment cost model and the planner add.

From the measured table of ``eksfold bench templates`` (``profiles/<profile>/templates.csv``:
per CAMEO 2022 target its length, MSA depth, the jackhmmer alignment and both template routes,
wall seconds). What the data supports: wall time grows with the query's length (correlation
0.94 for HHsearch, 0.88 for hmmsearch over 31-64 residues) and not with the MSA depth (1-3
sequences against the 20,000-sequence database: no spread to fit), so the term is
proportional to length, ``seconds = length * sum(wall) / sum(length)`` per route (a
one-parameter least-ratio fit: never negative, exact on the table's totals).

The figures are this 2-core machine against the stand-in databases built from the shipped
CAMEO structures (:mod:`.standin`), not against the full PDB70 / pdb_seqres, which were not
measured: read the term as the search machinery's cost at the stand-in's size. The source
string says so wherever a plan prints it.

>>> seconds, source = search_seconds_curve("hhsearch")
>>> round(seconds(100), 1) > round(seconds(50), 1) > 0
True
"""
from __future__ import annotations

import csv
import functools

from ..errors import ConfigError
from .settings import ROUTES

PROFILE = "cpu-2core"     # the profile whose templates.csv `eksfold bench templates` wrote


def per_residue(rows: list[dict], route: str) -> float:
    """Wall seconds per query residue of ``route`` over measured ``rows`` (templates.csv rows)."""
    if route not in ROUTES:
        raise ConfigError(f"template search {route!r}: expected one of {', '.join(ROUTES)}")
    column = f"{route}_wall_s"
    pts = [(float(r["length"]), float(r[column])) for r in rows if r.get(column) not in (None, "")]
    residues = sum(n for n, _ in pts)
    if not pts or residues <= 0:
        raise ConfigError(f"no measured {column} in the templates profile "
                          "(eksfold bench templates --profile <name> writes it)")
    return sum(s for _, s in pts) / residues


@functools.lru_cache(maxsize=4)
def _rows(profile: str) -> tuple:
    from ..planner.costs import _profile_file

    return tuple(csv.DictReader(_profile_file(profile, "templates.csv").open()))


def search_seconds_curve(route: str, profile: str = PROFILE, rows: list[dict] | None = None):
    """(seconds(length), source) of one template search by ``route`` per target, from the
    profile's templates.csv (or ``rows`` of that table)."""
    rows = list(_rows(profile)) if rows is None else rows
    rate = per_residue(rows, route)
    ratio = (sum(float(r[f"{route}_wall_s"]) for r in rows)
             / max(sum(float(r["align_wall_s"]) for r in rows), 1e-9))
    lengths = [int(r["length"]) for r in rows]

    def f(length: float) -> float:
        return rate * max(float(length), 0.0)
    return f, (f"align template search ({route}): {rate * 1000:.1f} ms per residue, measured "
               f"over {len(rows)} CAMEO targets of {min(lengths)}-{max(lengths)} residues "
               f"(profiles/{profile}/templates.csv, {ratio:.2f}x their jackhmmer wall time) "
               "against the stand-in template databases; full-size PDB70/pdb_seqres not "
               "measured")


def with_template_search(costs, route: str | None, profile: str = PROFILE,
                         rows: list[dict] | None = None):
    """``costs`` (a :class:`~eksfold.planner.costs.Costs`) with the template search of
    ``route`` added to every align unit (None: unchanged). The search follows the MSA in the
    same unit (:mod:`eksfold.stages.align`), so it is align time, on the alignment Pod."""
    if not route:
        return costs
    search, source = search_seconds_curve(route, profile, rows)
    base = costs.curves["align"]

    def align(length: float) -> float:
        return base(length) + search(length)
    costs.curves["align"] = align
    costs.sources.append(source)
    costs.template_search = route
    return costs
