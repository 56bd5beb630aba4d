"""The embedded default: warm worker processes on this machine, fed targets as they are ready.

Each stage gets up to N worker processes (``python -m eksfold.worker --serve``). A worker loads
its stage once (the inference model is built once, not per target) and then receives target
ids on its stdin as they become ready, answering with one JSON line per event; each unit is
committed by the worker as it finishes. A stage that gains from batches
(:meth:`eksfold.stages.Stage.batch_units`: MMseqs2 searches) gets up to that many ready
targets in one assignment, which the worker searches at once. Alignment of later targets
overlaps inference of earlier ones because each stage has its own workers. Workers die with
the driver (``PR_SET_PDEATHSIG``) and are stopped as a process group on Ctrl-C, so none is
left behind.
"""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..alignment.tools import die_with_parent
from ..contracts import Event, ExitCode
from ..run import Run
from .base import Executor, UnitEvent


@dataclass
class _Worker:
    proc: subprocess.Popen
    stage: str
    root: str
    log: Path
    wake: threading.Event
    events: "queue.Queue[dict | None]" = field(default_factory=queue.Queue)
    assigned: list[str] = field(default_factory=list)   # sent, not finished yet

    def start_reader(self) -> None:
        def read():
            for line in self.proc.stdout:
                try:
                    self.events.put(json.loads(line))
                except json.JSONDecodeError:
                    continue
                self.wake.set()
            self.events.put(None)   # EOF: the process ended
            self.wake.set()
        threading.Thread(target=read, daemon=True).start()

    def assign(self, targets: list[str]) -> None:
        self.assigned = list(targets)
        # one id per line; a batch as one JSON list (the worker prepares it as one search)
        self.proc.stdin.write((targets[0] if len(targets) == 1 else json.dumps(targets)) + "\n")
        self.proc.stdin.flush()

    def log_tail(self, lines: int = 5) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return " | ".join(text.strip().splitlines()[-lines:])


class LocalExecutor(Executor):
    """Warm workers per stage: ``align_workers``, ``infer_workers``, ``relax_workers``.

    ``threads`` caps torch/OpenMP threads of each inference worker (default: the CPU count
    divided by the inference workers); alignment tools take their CPU count from the run's
    AlignConfig.
    """

    name = "local"

    def __init__(self, align_workers: int = 1, infer_workers: int = 1, relax_workers: int = 1,
                 threads: int | None = None, python: str = sys.executable,
                 grace_seconds: float = 10.0):
        self.slots = {"align": max(1, align_workers), "infer": max(1, infer_workers),
                      "relax": max(1, relax_workers)}
        self.threads = threads or max(1, (os.cpu_count() or 1) // self.slots["infer"])
        self.python, self.grace = python, grace_seconds
        self.workers: list[_Worker] = []
        self.waiting: list[tuple[Run, str, str]] = []    # (run, stage, target) not yet assigned
        self._logdir: str | None = None
        self._serial = 0
        self._admission: dict = {}   # run root -> memory.admission.Admission (or None)
        # set by any worker's reader thread: the driver's next poll does not wait out its
        # interval, so a finished unit's successor is assigned within milliseconds
        self._wake = threading.Event()

    def _batch(self, stage: str, run: Run | None) -> int:
        from ..stages import get_stage
        return get_stage(stage).batch_units(run.config) if run is not None else 1

    def capacity(self, stage: str, run: Run | None = None) -> int:
        return self.slots.get(stage, 1) * self._batch(stage, run)

    def launch(self, run: Run, stage: str, target_ids: list[str]) -> None:
        self.waiting.extend((run, stage, tid) for tid in target_ids)
        self._dispatch()

    def _log_file(self, run: Run, stage: str) -> Path:
        """Where a worker's console goes: beside the run's logs when the root is local (each
        unit uploads its own log to the root anyway), else a temporary folder."""
        self._serial += 1
        name = f"logs/{stage}/worker-{os.getpid()}-{self._serial}.out"
        local = run.store.local_path(name)
        if local is None:
            self._logdir = self._logdir or tempfile.mkdtemp(prefix="eksfold-logs-")
            local = Path(self._logdir) / name.replace("/", "-")
        local.parent.mkdir(parents=True, exist_ok=True)
        return local

    def _spawn(self, run: Run, stage: str) -> _Worker:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "EKSFOLD_EXECUTOR": "local"}
        if stage == "infer":
            env.update(OMP_NUM_THREADS=str(self.threads), MKL_NUM_THREADS=str(self.threads),
                       EKSFOLD_THREADS=str(self.threads))
        log = self._log_file(run, stage)
        cmd = [self.python, "-m", "eksfold.worker", "--root", run.root, "--stage", stage, "--serve"]
        with open(log, "ab") as err:
            # own session: Ctrl-C in the terminal reaches the driver only, which stops each
            # worker's whole process group; PDEATHSIG stops them if the driver is killed
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=err, env=env, text=True, bufsize=1,
                                    start_new_session=True, preexec_fn=die_with_parent)
        worker = _Worker(proc, stage, run.root, log, self._wake)
        worker.start_reader()
        self.workers.append(worker)
        return worker

    def _dispatch(self) -> None:
        groups: dict[tuple[str, str], list[tuple[Run, str, str]]] = {}
        for item in self.waiting:
            groups.setdefault((item[0].root, item[1]), []).append(item)
        still = []
        for (root, stage), items in groups.items():
            run, size = items[0][0], self._batch(stage, items[0][0])
            while items:
                mine = [w for w in self.workers if w.stage == stage and w.root == root]
                idle = next((w for w in mine if not w.assigned), None)
                if idle is None and len(mine) < self.slots.get(stage, 1):
                    idle = self._spawn(run, stage)
                if idle is None or not self._admit(run, stage, items[0][2], idle):
                    break   # no worker free, or no memory beside what runs (held, not failed)
                idle.assign([tid for _, _, tid in items[:size]])
                items = items[size:]
            still += items
        self.waiting = still

    # memory as a scheduling input (eksfold.memory.admission): an inference unit starts only
    # when its predicted peak fits beside those running
    def _admit(self, run: Run, stage: str, target_id: str, worker: _Worker) -> bool:
        from ..memory.admission import Admission

        if stage != "infer":
            return True
        if run.root not in self._admission:
            self._admission[run.root] = (Admission.for_run(run, stage), run.store)
        admission, store = self._admission[run.root]
        return admission is None or admission.admit(store, target_id,
                                                    run.target(target_id).length, worker.proc.pid)

    def _unadmit(self, worker: _Worker, target_id: str) -> None:
        admission, store = self._admission.get(worker.root, (None, None))
        if admission is not None and worker.stage == "infer":
            admission.done(store, target_id)

    def wait(self, timeout: float) -> None:
        self._wake.wait(timeout)
        self._wake.clear()    # poll() drains every queue next, so nothing set meanwhile is lost

    def poll(self) -> list[UnitEvent]:
        events = []
        for worker in list(self.workers):
            while True:
                try:
                    msg = worker.events.get_nowait()
                except queue.Empty:
                    break
                if msg is None:            # the process ended: its unfinished units failed
                    code = worker.proc.wait()
                    self.workers.remove(worker)
                    why = f"worker exited with code {code}: " + worker.log_tail()
                    events += [UnitEvent(worker.stage, tid, Event.FAILED, why)
                               for tid in worker.assigned]
                    for tid in worker.assigned:
                        self._unadmit(worker, tid)
                    break
                if msg["event"] == "started":
                    events.append(UnitEvent(worker.stage, msg["target"], Event.RUNNING))
                elif msg["event"] == "finished":
                    code = msg["exit_code"]
                    if msg["target"] in worker.assigned:
                        worker.assigned.remove(msg["target"])
                    self._unadmit(worker, msg["target"])
                    why = f"exit code {code}" + (f": {msg['error']}" if msg.get("error") else "")
                    events.append(UnitEvent(worker.stage, msg["target"],
                                            Event.FINISHED if code == ExitCode.OK else Event.FAILED,
                                            None if code == ExitCode.OK else why))
        self._dispatch()
        return events

    def _stop(self, sig: int) -> None:
        for worker in self.workers:
            try:
                os.killpg(worker.proc.pid, sig)
            except ProcessLookupError:
                pass

    def _wait_all(self) -> None:
        deadline = time.monotonic() + self.grace
        for worker in self.workers:
            try:
                worker.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._stop(signal.SIGKILL)
                worker.proc.wait()
        self.workers.clear()

    def cancel(self) -> None:
        self.waiting.clear()
        self._stop(signal.SIGTERM)
        self._wait_all()

    def close(self) -> None:
        """Let idle workers finish: EOF on their stdin makes them close their stage and exit."""
        for worker in self.workers:
            try:
                worker.proc.stdin.close()
            except OSError:
                pass
        self._wait_all()
