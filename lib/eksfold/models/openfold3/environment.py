"""Finding ``.venv-of3`` and running code there from the main environment.

The OpenFold3 environment is made by ``make test-setup`` (``mk/openfold3.mk``) at the
repository root; ``$EKSFOLD_OF3_PYTHON`` overrides its interpreter (a worker image puts it
elsewhere). Child processes get this checkout's ``lib`` first on ``PYTHONPATH`` and OpenFold3's
scratch variables pointed inside a directory we own (see :func:`.runner.confine_environment`).
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ...errors import MissingDependencyError

LIB = Path(__file__).resolve().parents[3]        # <checkout>/lib
ROOT = LIB.parent
OF3_VENV = ROOT / ".venv-of3"


def of3_python(python: str | None = None) -> str:
    """The ``.venv-of3`` interpreter; :class:`MissingDependencyError` says how to make it."""
    path = Path(python or os.environ.get("EKSFOLD_OF3_PYTHON") or OF3_VENV / "bin" / "python")
    if not path.exists():
        raise MissingDependencyError(
            f"OpenFold3's environment ({path})", "Run: make test-setup (it builds .venv-of3, "
            "mk/openfold3.mk), or set EKSFOLD_OF3_PYTHON")
    return str(path)


def of3_env(work: str | Path | None = None, base: dict | None = None) -> dict:
    """Environment for a ``.venv-of3`` child: our ``lib`` first; scratch under ``work``."""
    env = dict(os.environ if base is None else base)
    # $EKSFOLD_OF3_LIB: a folder holding only the eksfold package (a worker image, where LIB
    # would be the main environment's site-packages, numpy 1.x and all)
    lib = os.environ.get("EKSFOLD_OF3_LIB") or str(LIB)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (lib, env.get("PYTHONPATH")) if p)
    env.pop("VIRTUAL_ENV", None)
    if work is not None:
        work = Path(work).resolve()
        env["TMPDIR"] = str(work / "tmp")
        env["OPENFOLD_CACHE"] = str(work / "openfold_cache")
        for key in ("TMPDIR", "OPENFOLD_CACHE"):
            Path(env[key]).mkdir(parents=True, exist_ok=True)
    return env


def run_in_of3(args: list[str], stdin: str = "", python: str | None = None,
               work: str | Path | None = None, timeout: float | None = 600) -> str:
    """Run ``python ARGS`` in ``.venv-of3``; its stdout, or :class:`RuntimeError` with the
    tail of its stderr."""
    proc = subprocess.run([of3_python(python), *args], input=stdin, capture_output=True,
                          text=True, env=of3_env(work), timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} in .venv-of3 exited {proc.returncode}: "
                           f"{proc.stderr[-2000:]}")
    return proc.stdout
