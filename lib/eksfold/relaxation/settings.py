"""What a relaxation is asked to do (RelaxSettings) and how it fails (RelaxError)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..errors import ConfigError, EksfoldError

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
        kcal/mol, L-BFGS convergence tolerance (OpenMM 8: applied per Å, see models.openfold2.compat).
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
