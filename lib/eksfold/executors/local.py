"""The embedded default: run work units as subprocesses of the worker on this machine."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..run import Run, log_path
from .base import Executor, UnitEvent


class LocalExecutor(Executor):
    """Subprocesses of ``python -m eksfold.worker``, with a concurrency limit per stage.

    Alignment of later targets overlaps with inference of earlier ones because each stage has
    its own slots. ``threads`` caps the torch/OpenMP threads of each inference unit (default:
    the CPU count divided by the inference slots); alignment tools take their CPU count from
    the run's AlignConfig, and are short next to inference, so the brief overlap is accepted.
    """

    name = "local"

    def __init__(self, align_workers: int = 1, infer_workers: int = 1,
                 threads: int | None = None, python: str = sys.executable,
                 grace_seconds: float = 10.0):
        self.slots = {"align": max(1, align_workers), "infer": max(1, infer_workers)}
        self.threads = threads or max(1, (os.cpu_count() or 1) // self.slots["infer"])
        self.python, self.grace = python, grace_seconds
        self.procs: dict[tuple[str, str], tuple[subprocess.Popen, Path]] = {}
        self._logdir = None

    def capacity(self, stage: str) -> int:
        return self.slots[stage]

    def _log_file(self, run: Run, stage: str, tid: str) -> Path:
        local = run.store.local_path(log_path(stage, tid))
        if local is None:  # remote root: the worker uploads its own log; keep stdout nearby
            self._logdir = self._logdir or tempfile.mkdtemp(prefix="eksfold-logs-")
            local = Path(self._logdir) / f"{stage}-{tid}.out"
        local = local.with_suffix(".out")
        local.parent.mkdir(parents=True, exist_ok=True)
        return local

    def launch(self, run: Run, stage: str, target_ids: list[str]) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": str(self.threads),
               "MKL_NUM_THREADS": str(self.threads), "PYTHONUNBUFFERED": "1"}
        for tid in target_ids:
            out = self._log_file(run, stage, tid)
            cmd = [self.python, "-m", "eksfold.worker", "--root", run.root,
                   "--stage", stage, "--target", tid]
            with open(out, "wb") as fh:
                # Own session: Ctrl-C in the terminal reaches us only, and we stop the
                # unit's whole process group (jackhmmer children included).
                proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True)
            self.procs[(stage, tid)] = (proc, out)

    def poll(self) -> list[UnitEvent]:
        events = []
        for key, (proc, out) in list(self.procs.items()):
            code = proc.poll()
            if code is None:
                continue
            del self.procs[key]
            if code == 0:
                events.append(UnitEvent(*key, "finished"))
            else:
                tail = out.read_text(errors="replace").strip().splitlines()[-5:] if out.exists() else []
                events.append(UnitEvent(*key, "failed", f"exit code {code}: " + " | ".join(tail)))
        return events

    def cancel(self) -> None:
        for proc, _ in self.procs.values():
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + self.grace
        for proc, _ in self.procs.values():
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()
