"""External alignment programs share one lifecycle: build the command, run it measured, evaluate.

:class:`Tool` is the base (biotite's application pattern, reduced to what a work unit needs):
a subclass says how to build its command line (:meth:`Tool.command`) and how to check and
post-process its outputs (:meth:`Tool.evaluate`); :meth:`Tool.run` does the rest through
:func:`run_tool`, which measures wall time, CPU time and peak memory of exactly that child
(``wait4``) and turns a non-zero exit into :class:`~eksfold.errors.ToolError` carrying the exit
code and the tail of stderr. The child dies with its worker (``PR_SET_PDEATHSIG``), so a killed
worker leaves no alignment program running.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, ToolError

_PR_SET_PDEATHSIG = 1


@dataclass
class ToolRun:
    """Resource use of one external program run."""

    tool: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float


def die_with_parent() -> None:
    """In a child process: receive SIGKILL when the parent process dies (Linux)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux: the executor's process-group kill still applies
        pass


def run_tool(tool: str, args: list[str], cwd: str | Path | None = None) -> ToolRun:
    """Run ``args`` to completion; measure it with ``wait4`` (rusage of exactly this child)."""
    if shutil.which(args[0]) is None:
        raise ConfigError(f"{args[0]} not found on PATH: install the alignment tools (make setup)")
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=die_with_parent)
    # Drain stderr before waiting so a chatty tool cannot block on a full pipe.
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = "\n".join(stderr.decode(errors="replace").strip().splitlines()[-15:])
        raise ToolError(tool, proc.returncode, tail)
    return ToolRun(tool, round(wall, 3), round(usage.ru_utime + usage.ru_stime, 3),
                   round(usage.ru_maxrss / 1024, 1))


class Tool:
    """One external program run on one query; subclasses fill in the two hooks."""

    name = "tool"
    output_name = ""          # the file OpenFold's data pipeline reads (uniref90_hits.sto, ...)

    def command(self, query: Path, out: Path) -> list[str]:
        raise NotImplementedError

    def evaluate(self, out: Path) -> None:
        """Check and post-process the output file (default: it must exist)."""
        if not out.is_file():
            raise ToolError(self.name, 0, f"finished without writing {out.name}")

    def run(self, query: Path, out: Path) -> ToolRun:
        result = run_tool(self.name, self.command(query, out))
        self.evaluate(out)
        return result


def tool_version(cmd: list[str]) -> str | None:
    """The first line with a digit in a program's help output (HMMER and HH-suite print their
    version there), or None when the program is not installed."""
    if not shutil.which(cmd[0]):
        return None
    out = subprocess.run(cmd, capture_output=True, text=True).stdout + ""
    lines = [ln for ln in out.splitlines() if ln.strip()]
    return next((ln.strip("# ").strip() for ln in lines if any(c.isdigit() for c in ln)), None)
