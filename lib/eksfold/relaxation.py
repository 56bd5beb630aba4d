"""Amber relaxation of predicted structures with OpenFold's own relax code and OpenMM.

:func:`relax_structure` runs ``openfold.np.relax.amber_minimize.run_pipeline`` (the code behind
OpenFold's ``AmberRelaxation``: restrained Amber99sb minimisation, repeated while structural
violations remain) in a child process, ``python -m eksfold.relaxation``, that is killed at the
wall-time limit: OpenMM's minimiser cannot be interrupted from Python, so only a process
boundary makes the limit real. Every failure (timeout, no convergence, degenerate or unusable
input) is a :class:`RelaxError` naming the target and the reason.

>>> result = relax_structure(open("unrelaxed.pdb").read(), RelaxSettings(), "T1")  # doctest: +SKIP
>>> result.metrics["energy_after"] < result.metrics["energy_before"]            # doctest: +SKIP
True
"""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError, EksfoldError

PLATFORMS = ("auto", "CPU", "CUDA", "OpenCL", "Reference")
DEGENERATE = "cannot be minimised: structure is degenerate (untrained weights?)"


class RelaxError(EksfoldError):
    """Relaxation of one target failed.

    ``reason`` says why, ``kind`` is one of "timeout", "not_converged", "degenerate", "input",
    "platform", "error" (for a summary column), ``log_tail`` is what the child process wrote.
    """

    def __init__(self, target: str, reason: str, log_tail: str = "", kind: str = "error"):
        self.target, self.reason, self.log_tail, self.kind = target, reason, log_tail, kind
        super().__init__(f"relax of target {target!r}: {reason}")


@dataclass(frozen=True)
class RelaxSettings:
    """How to relax; the minimiser defaults are OpenFold's ``config.relax`` section.

    Parameters
    ----------
    stiffness : float
        kcal/mol/Å², spring constant restraining heavy atoms to their predicted positions.
    tolerance : float
        kcal/mol, L-BFGS convergence tolerance (OpenMM 8: applied per Å, see openfold_compat).
    max_iterations : int
        L-BFGS steps per minimisation; 0 = until converged.
    max_outer_iterations : int
        Violation-informed rounds: residues still violating are unrestrained and re-minimised.
    exclude_residues : tuple of int
        Zero-based residues never restrained.
    max_attempts : int
        Tries per round before "did not converge". OpenFold's run_pipeline defaults to 100, but a
        failing CPU minimisation fails the same way each time; that is what users saw "hang".
    platform : str
        "auto" (CUDA when OpenMM has it and a GPU is visible, else CPU), "CPU", "CUDA",
        "OpenCL" or "Reference".
    threads : int or None
        OpenMM CPU threads (``OPENMM_CPU_THREADS``); None = all cores.
    timeout_s : float
        Wall-time limit for the whole relaxation, child start-up included.
    """

    stiffness: float = 10.0
    tolerance: float = 2.39
    max_iterations: int = 0
    max_outer_iterations: int = 20
    exclude_residues: tuple = field(default_factory=tuple)
    max_attempts: int = 5
    platform: str = "auto"
    threads: int | None = None
    timeout_s: float = 900.0

    def __post_init__(self):
        object.__setattr__(self, "exclude_residues", tuple(int(r) for r in self.exclude_residues))
        if self.platform not in PLATFORMS:
            raise ConfigError(f"relax platform {self.platform!r}: choose one of {', '.join(PLATFORMS)}")
        for name in ("stiffness", "tolerance", "timeout_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"relax {name} must be > 0, got {getattr(self, name)!r}")
        for name, low in (("max_iterations", 0), ("max_outer_iterations", 1), ("max_attempts", 1)):
            if getattr(self, name) < low:
                raise ConfigError(f"relax {name} must be >= {low}, got {getattr(self, name)!r}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"relax threads must be >= 1 or None, got {self.threads!r}")

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "exclude_residues": list(self.exclude_residues)}

    @classmethod
    def from_dict(cls, data: dict) -> "RelaxSettings":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown relax settings: {', '.join(sorted(unknown))}")
        return cls(**data)


@dataclass
class RelaxResult:
    """A relaxed structure (PDB text, hydrogens included, B-factors kept) and its metrics.

    ``metrics``: relax_s (minimisation), wall_s (child process included), attempts,
    outer_iterations, energy_before/energy_after (unrestrained Amber99sb potential, kcal/mol,
    hydrogens placed by pdbfixer), violations_before/violations_after (residues with
    OpenFold structural violations), clashes_before/clashes_after (fraction of residues in
    clashes), ca_rmsd_moved (Å, no superposition: restraints keep the frame), length,
    platform, openmm.
    """

    relaxed_pdb: str
    metrics: dict

    @property
    def relaxed_cif(self) -> str:
        """The relaxed structure as mmCIF (pLDDT kept), as eksfold writes predictions."""
        from .structure_io import to_mmcif

        return to_mmcif(self.relaxed_pdb, name="relaxed")


def relax_structure(pdb_text: str, settings: RelaxSettings | None = None,
                    target_id: str = "structure") -> RelaxResult:
    """Amber-relax one structure (all heavy atoms present, e.g. OpenFold's unrelaxed.pdb).

    Raises
    ------
    RelaxError
        On timeout (the child is killed), non-convergence, degenerate or unparsable input.
    MissingDependencyError
        If OpenMM, pdbfixer or OpenFold's stereo_chemical_props.txt are missing.
    """
    from .openfold_compat import check_relax_resources

    settings = settings or RelaxSettings()
    check_relax_resources()
    env = dict(os.environ)
    if settings.threads:
        env["OPENMM_CPU_THREADS"] = str(settings.threads)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="eksfold-relax-") as tmp:
        request, result, log = (Path(tmp) / n for n in ("request.json", "result.json", "log.txt"))
        request.write_text(json.dumps({"pdb": pdb_text, "settings": settings.to_dict()}))
        with open(log, "wb") as log_fh:
            # Same process group as the caller, so Ctrl-C and an executor's group kill reach
            # it; it also dies with its parent (see _die_with_parent).
            child = subprocess.Popen([sys.executable, "-m", "eksfold.relaxation", str(request),
                                      str(result), str(os.getpid())], stdout=log_fh,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
            try:
                code = child.wait(timeout=settings.timeout_s)
            except BaseException as exc:  # timeout, Ctrl-C: never leave a minimiser running
                child.kill()  # one process: OpenMM's CPU workers are threads
                child.wait()
                if isinstance(exc, subprocess.TimeoutExpired):
                    raise RelaxError(target_id, f"timed out after {settings.timeout_s:g} s "
                                     "(timeout_s); minimisation stopped", _tail(log),
                                     "timeout") from None
                raise
        answer = json.loads(result.read_text()) if result.exists() else {}
        if code != 0 or "error" in answer:
            tail = _tail(log)
            reason = answer.get("error") or (f"relax process exited with code {code}: "
                                             + (tail.splitlines() or ["(no output)"])[-1])
            raise RelaxError(target_id, reason, tail, answer.get("kind", "error"))
    answer["metrics"]["wall_s"] = round(time.perf_counter() - start, 3)
    return RelaxResult(answer["relaxed_pdb"], answer["metrics"])


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _die_with_parent(parent_pid: int) -> None:
    """SIGKILL this process when its parent dies (Linux), so a killed worker leaves no orphan."""
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the parent's timeout still applies
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        print(f"eksfold.relaxation: caller {parent_pid} is gone; not relaxing", file=sys.stderr)
        os._exit(1)


def _child_main(request_path: str, result_path: str, parent_pid: str) -> int:
    """Entry point of the child: read the request, relax, write the result as JSON."""
    _die_with_parent(int(parent_pid))
    request = json.loads(Path(request_path).read_text())
    try:
        pdb, metrics = relax_in_process(request["pdb"], RelaxSettings.from_dict(request["settings"]))
        out, code = {"relaxed_pdb": pdb, "metrics": metrics}, 0
    except InputProblem as exc:
        out, code = {"error": str(exc), "kind": exc.kind}, 2
    except NotConverged as exc:
        out, code = {"error": str(exc), "kind": "not_converged"}, 1
    except Exception as exc:  # OpenFold/OpenMM raise bare ValueError/AssertionError
        traceback.print_exc()  # into the unit's log; the reason goes to the caller
        out, code = {"error": f"{type(exc).__name__}: {exc}"}, 1
    tmp = Path(result_path + ".tmp")
    tmp.write_text(json.dumps(out))
    tmp.replace(result_path)
    return code


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

    from . import openfold_compat

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


if __name__ == "__main__":
    sys.exit(_child_main(*sys.argv[1:4]))
