"""The relaxation itself, in the child process: OpenFold's Amber pipeline plus input checks."""
from __future__ import annotations

import sys
import time

from .settings import DEGENERATE, PLATFORMS, RelaxSettings  # noqa: F401

class InputProblem(ValueError):
    """The input cannot be relaxed (degenerate, unparsable, unknown platform): exit code 2."""

    def __init__(self, message: str, kind: str = "input"):
        self.kind = kind
        super().__init__(message)


class NotConverged(RuntimeError):
    """OpenFold's run_pipeline gave up after ``max_attempts`` minimisations."""


def relax_in_process(pdb_text: str, settings: RelaxSettings) -> tuple[str, dict]:
    """Relax in this process, no time limit (the child's work; use :func:`relax_structure`)."""
    import contextlib
    import io

    import numpy as np
    import openmm

    from ..models.openfold2 import compat as openfold_compat

    openfold_compat.fix_amber_minimize()
    from openfold.np import protein
    from openfold.np.relax import amber_minimize, utils

    platform = _resolve_platform(settings.platform)
    openfold_compat.pin_openmm_platform(platform)
    try:
        prot = protein.from_pdb_string(pdb_text)
    except Exception as exc:
        raise InputProblem(f"cannot be parsed as PDB: {type(exc).__name__}: {exc}") from None
    # OpenFold's to_pdb starts counting chains at index 0 ("A"); a lone chain "C" would be cut
    # into two chains after its first residue, and the clean-up check then fails.
    prot.chain_index[:] = np.unique(prot.chain_index, return_inverse=True)[1]
    problem = degeneracy(prot.atom_positions, prot.atom_mask)
    if problem:
        raise InputProblem(f"{DEGENERATE}: {problem}", "degenerate")
    problem = _missing_heavy_atoms(prot, protein.ideal_atom_mask(prot))
    if problem:
        raise InputProblem(problem)

    before = amber_minimize.get_violation_metrics(prot)
    energy_before = _energy(amber_minimize, amber_minimize.clean_protein(prot, checks=False))
    print(f"eksfold.relaxation: minimising {len(prot.aatype)} residues on {platform}",
          file=sys.stderr, flush=True)  # in the unit's log: a timeout here was the minimiser
    printed = io.StringIO()  # run_pipeline print()s each failed attempt's error
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(printed):
            out = amber_minimize.run_pipeline(
                prot=prot, stiffness=settings.stiffness, use_gpu=platform == "CUDA",
                max_outer_iterations=settings.max_outer_iterations,
                max_iterations=settings.max_iterations, tolerance=settings.tolerance,
                max_attempts=settings.max_attempts, exclude_residues=list(settings.exclude_residues))
    except ValueError as exc:
        if "Minimization failed" not in str(exc):
            raise
        last = (printed.getvalue().strip().splitlines() or ["?"])[-1]
        raise NotConverged(f"minimisation did not converge: {exc} (last error: {last})") from None
    relax_s = time.perf_counter() - start
    # As OpenFold's AmberRelaxation.process: minimised coordinates on the cleaned input,
    # the input's B-factors (pLDDT) back, the same heavy atoms, PARENT headers.
    min_pdb = utils.overwrite_pdb_coordinates(amber_minimize.clean_protein(prot), out["pos"])
    min_pdb = utils.overwrite_b_factors(min_pdb, prot.b_factors)
    relaxed = protein.from_pdb_string(min_pdb)
    utils.assert_equal_nonterminal_atom_types(relaxed.atom_mask, prot.atom_mask)
    after = out  # run_pipeline's violation metrics are of exactly these final coordinates
    ca = 1  # atom37 index of CA
    moved = relaxed.atom_positions[:, ca] - prot.atom_positions[:, ca]
    metrics = {
        "length": int(len(prot.aatype)), "relax_s": round(relax_s, 3),
        "attempts": int(out["min_attempts"]), "outer_iterations": int(out["iteration"]) + 1,
        "energy_before": energy_before, "energy_after": _energy(amber_minimize, min_pdb),
        "violations_before": int(before["num_residue_violations"]),
        "violations_after": int(after["num_residue_violations"]),
        "clashes_before": round(float(before["violations_between_residue_clash"]), 4),
        "clashes_after": round(float(after["violations_between_residue_clash"]), 4),
        "ca_rmsd_moved": round(float(np.sqrt((moved ** 2).sum(-1).mean())), 4),
        "platform": platform, "openmm": openmm.version.version,
    }
    return protein.add_pdb_headers(prot, min_pdb), metrics


def degeneracy(positions, mask, within: float = 0.5, fraction: float = 0.1) -> str | None:
    """Why a structure cannot be minimised, or None.

    Untrained weights put every residue's frame at the origin, so Cα atoms coincide; Amber's
    energy is then infinite. Real structures never have Cα closer than ~2.8 Å.
    """
    import numpy as np
    from scipy.spatial import cKDTree

    ca = positions[mask[:, 1] > 0, 1]
    if len(ca) < 2:
        return f"{len(ca)} residue(s) with a Cα atom"
    if not np.isfinite(positions[mask > 0]).all():
        return "non-finite coordinates"
    close = np.unique(np.array(list(cKDTree(ca).query_pairs(within)), dtype=int).ravel())
    if len(close) > fraction * len(ca):
        return f"{len(close)} of {len(ca)} residues have a Cα within {within} Å of another"
    # Coincident atoms inside a residue break hydrogen placement (a division by zero).
    d = np.linalg.norm(positions[:, :, None] - positions[:, None, :], axis=-1)
    both = (mask[:, :, None] > 0) & (mask[:, None, :] > 0) & ~np.eye(mask.shape[1], dtype=bool)
    bad = np.flatnonzero(((d < 0.1) & both).any(axis=(1, 2)))
    if len(bad):
        return f"{len(bad)} residue(s) with coincident atoms (first: residue {bad[0] + 1})"
    return None


def _missing_heavy_atoms(prot, ideal) -> str | None:
    import numpy as np
    from openfold.np import residue_constants as rc

    ideal = ideal.copy()
    ideal[:, rc.atom_order["OXT"]] = prot.atom_mask[:, rc.atom_order["OXT"]]  # OXT optional
    short = np.flatnonzero((ideal > prot.atom_mask).any(axis=1))
    if not len(short):
        return None
    i = short[0]
    names = [rc.atom_types[a] for a in np.flatnonzero(ideal[i] > prot.atom_mask[i])]
    return (f"{len(short)} residue(s) lack heavy atoms (first: residue {i + 1} "
            f"{rc.restype_1to3.get((rc.restypes + ['X'])[prot.aatype[i]], 'UNK')} missing "
            f"{', '.join(names)}); complete them first (pdbfixer), as OpenFold predictions are")


def _energy(amber_minimize, pdb_text: str) -> float | None:
    """Unrestrained Amber99sb potential energy (kcal/mol) with OpenFold's own helper.

    None where it is not finite (overlapping atoms): JSON has no inf/NaN.
    """
    import math

    energy = amber_minimize.get_initial_energies([pdb_text], stiffness=0.0)[0]
    if hasattr(energy, "value_in_unit"):  # its error value is a Quantity of 1e20 kcal/mol
        return None
    return round(float(energy), 2) if math.isfinite(energy) else None


def _resolve_platform(name: str) -> str:
    import openmm

    have = [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())]
    if name == "auto":
        import torch

        return "CUDA" if "CUDA" in have and torch.cuda.is_available() else "CPU"
    if name not in have:
        raise InputProblem(f"OpenMM platform {name!r} is not available here (have: {', '.join(have)})",
                           "platform")
    return name


