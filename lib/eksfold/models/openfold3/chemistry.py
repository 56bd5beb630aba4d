"""Ligand checks that need chemistry (runs in ``.venv-of3``: rdkit, biotite).

A SMILES string must parse and sanitise with RDKit, the toolkit OpenFold3 itself builds
ligands with; a CCD code must exist in the chemical component dictionary that ships inside
biotite's wheel, the one OpenFold3 reads (FACTS), so the check is offline and agrees with what
OpenFold3 will find. From the main environment, :func:`check_targets` runs this module in
``.venv-of3`` (one process for a whole input file) and returns the refusals.
"""
from __future__ import annotations

import json
import sys
from functools import lru_cache


@lru_cache(maxsize=1)
def _ccd_codes() -> frozenset:
    import biotite.structure.info as info
    return frozenset(info.all_residues())


def problem(kind: str, value: str) -> str | None:
    """Why ``value`` (a SMILES string or a CCD code) is unusable, or None."""
    if kind == "smiles":
        from rdkit import Chem, RDLogger
        RDLogger.DisableLog("rdApp.*")  # the reason is reported by us, once, per chain
        mol = Chem.MolFromSmiles(value)
        if mol is None:
            return f"invalid SMILES {value!r}: RDKit cannot parse or sanitise it"
        if mol.GetNumAtoms() == 0:
            return f"SMILES {value!r} has no atoms"
        return None
    if kind == "ccd":
        if value not in _ccd_codes():
            return (f"unknown CCD code {value!r}: not in the chemical component dictionary "
                    "(biotite's copy, which OpenFold3 reads)")
        return None
    raise ValueError(f"unknown ligand kind {kind!r}")


def check(items: list[dict]) -> list[dict]:
    """``[{"target", "chain", "kind", "value"}]`` -> the same items with a ``problem``, for
    those that have one."""
    return [{**item, "problem": p} for item in items
            if (p := problem(item["kind"], item["value"]))]


def heavy_atoms(kind: str, value: str) -> int:
    """Heavy atoms of a valid SMILES string or CCD component: its OpenFold3 tokens (one per
    ligand atom, as AlphaFold3 tokenises ligands)."""
    if kind == "smiles":
        from rdkit import Chem
        return Chem.MolFromSmiles(value).GetNumHeavyAtoms()
    import biotite.structure.info as info
    component = info.residue(value)
    return int((component.element != "H").sum())


def describe(items: list[dict]) -> list[dict]:
    """Every item with ``problem`` (None when usable) and, when usable, ``atoms``."""
    out = []
    for item in items:
        why = problem(item["kind"], item["value"])
        out.append({**item, "problem": why,
                    "atoms": None if why else heavy_atoms(item["kind"], item["value"])})
    return out


def ligand_report(targets, python: str | None = None) -> list[dict]:
    """:func:`describe` for every ligand of ``targets`` (ComplexTarget), from either
    environment (one ``.venv-of3`` process for all of them)."""
    from .environment import run_in_of3

    items = [{"target": t.id, "chain": chain, "kind": kind, "value": value}
             for t in targets for chain, kind, value in t.ligands()]
    if not items:
        return []
    try:
        import rdkit  # noqa: F401  (inside .venv-of3: no subprocess)
        return describe(items)
    except ImportError:
        return json.loads(run_in_of3(["-m", __name__, "--describe"], json.dumps(items),
                                     python=python))


def check_targets(targets, errors: list | None = None, python: str | None = None):
    """Refuse targets whose ligands fail :func:`problem`, from either environment.

    Returns the targets that pass. A failing target raises
    :class:`~.complex.ComplexInputError` (target, chain, value), or, when ``errors`` is a
    list, is appended there and left out.
    """
    from .complex import ComplexInputError
    from .environment import run_in_of3

    items = [{"target": t.id, "chain": chain, "kind": kind, "value": value}
             for t in targets for chain, kind, value in t.ligands()]
    if not items:
        return list(targets)
    try:
        import rdkit  # noqa: F401  (inside .venv-of3: no subprocess)
        found = check(items)
    except ImportError:
        found = json.loads(run_in_of3(["-m", __name__], json.dumps(items), python=python))
    bad: dict[str, ComplexInputError] = {}
    for item in found:
        bad.setdefault(item["target"], ComplexInputError(item["target"], item["chain"],
                                                         item["problem"]))
    if bad and errors is None:
        raise next(iter(bad.values()))
    if errors is not None:
        errors.extend(bad.values())
    return [t for t in targets if t.id not in bad]


def main() -> int:
    items = json.load(sys.stdin)
    print(json.dumps(describe(items) if "--describe" in sys.argv else check(items)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
