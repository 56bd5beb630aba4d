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

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .minimise import degeneracy  # noqa: F401  (public API)
from .settings import DEGENERATE, PLATFORMS, RelaxError, RelaxSettings  # noqa: F401


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
        from ..structure_io import to_mmcif

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
    from ..models.openfold2.compat import check_relax_resources

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


