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

Each worker runs in a memory cgroup of its own where cgroups are writable (root; an optional
limit per stage, ``infer_memory_mb``), so a worker that dies is told apart: killed for memory
(the cgroup's or the kernel log's OOM record of it, :mod:`eksfold.memory.oomkill`) or killed
for another reason. Either is recorded with :func:`eksfold.memory.kills.record_kill`. A unit
whose worker was killed for memory is given at once to a fresh worker, which starts it one
setting lower (up to the most frugal; then the unit is refused for memory, retryable); the
units the dead worker had not started yet go back to the queue. Any other kill fails the unit
for this run only (it is retried on the next run, with the same setting).
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
from ..memory.kills import OOM, record_kill
from ..memory.oomkill import KernelLog, WorkerCgroup, death_cause
from ..run import Run
from .base import Executor, UnitEvent


# how many times one unit is handed to a fresh worker after an OOM kill, within one run: each
# try starts one setting lower, so the ladder's length bounds it; more would be a loop
OOM_RETRIES = 4


@dataclass
class _Worker:
    proc: subprocess.Popen
    stage: str
    run: Run
    log: Path
    wake: threading.Event
    cgroup: WorkerCgroup | None = None
    kmsg: KernelLog | None = None
    oom_kills_before: int = 0
    events: "queue.Queue[dict | None]" = field(default_factory=queue.Queue)
    assigned: list[str] = field(default_factory=list)   # sent, not finished yet
    current: str | None = None                          # started, not finished

    @property
    def root(self) -> str:
        return self.run.root

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
                 grace_seconds: float = 10.0, infer_memory_mb: float | None = None):
        self.slots = {"align": max(1, align_workers), "infer": max(1, infer_workers),
                      "relax": max(1, relax_workers)}
        self.threads = threads or max(1, (os.cpu_count() or 1) // self.slots["infer"])
        self.python, self.grace = python, grace_seconds
        # a memory limit (the worker's own cgroup) per stage; None: a cgroup without limit
        self.memory_mb = {"infer": infer_memory_mb}
        self.oom_retries: dict[tuple[str, str, str], int] = {}   # (root, stage, target)
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
        cgroup = WorkerCgroup.create(self.memory_mb.get(stage))
        kmsg = KernelLog()

        def preexec():
            die_with_parent()
            if cgroup is not None:
                cgroup.join_self()

        with open(log, "ab") as err:
            # own session: Ctrl-C in the terminal reaches the driver only, which stops each
            # worker's whole process group; PDEATHSIG stops them if the driver is killed
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=err, env=env, text=True, bufsize=1,
                                    start_new_session=True, preexec_fn=preexec)
        worker = _Worker(proc, stage, run, log, self._wake, cgroup, kmsg,
                         cgroup.oom_kills() if cgroup is not None else 0)
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
                if msg is None:            # the process ended
                    events += self._ended(worker)
                    break
                if msg["event"] == "started":
                    worker.current = msg["target"]
                    events.append(UnitEvent(worker.stage, msg["target"], Event.RUNNING))
                elif msg["event"] == "finished":
                    code = msg["exit_code"]
                    worker.current = None
                    if msg["target"] in worker.assigned:
                        worker.assigned.remove(msg["target"])
                    self._unadmit(worker, msg["target"])
                    if msg.get("deferred"):   # another live process (a second driver) holds
                        # it: not a failure; offered again, the worker waits on its lease
                        self.waiting.append((worker.run, worker.stage, msg["target"]))
                        events.append(UnitEvent(worker.stage, msg["target"], Event.WAITING,
                                                msg.get("error")))
                        continue
                    why = f"exit code {code}" + (f": {msg['error']}" if msg.get("error") else "")
                    events.append(UnitEvent(worker.stage, msg["target"],
                                            Event.FINISHED if code == ExitCode.OK else Event.FAILED,
                                            None if code == ExitCode.OK else why))
        self._dispatch()
        return events

    def _ended(self, worker: _Worker) -> list[UnitEvent]:
        """A worker process ended: record how its running unit's process died; a unit killed
        for memory goes to a fresh worker at once (it starts one setting lower), the units it
        had not started go back to the queue; otherwise its unfinished units failed."""
        code = worker.proc.wait()
        self.workers.remove(worker)
        cause = death_cause(worker.proc.pid, code, worker.cgroup, worker.oom_kills_before,
                            worker.kmsg)
        self._release(worker)
        for t in worker.assigned:   # its memory is free again (memory.admission)
            self._unadmit(worker, t)
        why = f"worker exited with code {code}: " + worker.log_tail()
        tid, stage = worker.current, worker.stage
        if cause is not None and tid is not None:
            record_kill(worker.run.store, stage, tid, cause[0], cause[1], self.name)
            why = f"killed ({'out of memory' if cause[0] == OOM else 'cause unknown'}): {cause[1]}"
        key = (worker.root, stage, tid)
        # inference steps down a setting on each retry; other stages have no ladder: once
        limit = OOM_RETRIES if stage == "infer" else 1
        if cause is not None and cause[0] == OOM and tid is not None \
                and self.oom_retries.get(key, 0) < limit:
            self.oom_retries[key] = self.oom_retries.get(key, 0) + 1
            # the killed unit first, then those it had not started, ahead of everything else
            self.waiting[:0] = [(worker.run, stage, t) for t in
                                [tid] + [t for t in worker.assigned if t != tid]]
            return [UnitEvent(stage, tid, Event.WAITING,
                              f"{why}; retrying in a fresh worker, one setting lower")]
        return [UnitEvent(stage, t, Event.FAILED, why) for t in worker.assigned]

    @staticmethod
    def _release(worker: _Worker) -> None:
        if worker.kmsg is not None:
            worker.kmsg.close()
        if worker.cgroup is not None:
            worker.cgroup.remove()

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
            self._release(worker)
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
