"""Why a local worker process died: the kernel's or its cgroup's out-of-memory record of it.

A process the kernel kills for memory ends with SIGKILL, exactly like one a user (or the
driver's death, ``PR_SET_PDEATHSIG``) killed; the exit status cannot tell them apart. Two
records of the kernel can, and the local executor reads both:

- the worker's own memory cgroup (:class:`WorkerCgroup`): its OOM-kill counter (v2
  ``memory.events`` ``oom_kill``, v1 ``memory.oom_control`` ``oom_kill``) counts kills of its
  processes by any OOM killer, the cgroup's limit or the whole machine running out;
- the kernel log (``/dev/kmsg``): ``Out of memory: Killed process <pid>`` (global) or
  ``Memory cgroup out of memory: Killed process <pid>``, read from the position the log had
  when the worker started (:class:`KernelLog`).

:func:`death_cause` turns what was seen into the ``cause`` of :func:`eksfold.memory.kills.record_kill`.
"""
from __future__ import annotations

import os
import re
import signal
import uuid
from pathlib import Path

from .kills import OOM, UNKNOWN
from .limits import CGROUP, _cgroup_parent, write_memory_limit

PREFIX = "eksfold-w"
_KILLED = re.compile(r"out of memory.*?: Killed process (\d+)\b", re.IGNORECASE)


def _own_v1_memory_group() -> Path | None:
    """This process's v1 memory cgroup folder, when the v1 memory hierarchy is mounted."""
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, rel = line.split(":", 2)
            if "memory" in controllers.split(","):
                return CGROUP / "memory" / rel.lstrip("/")
    except OSError:
        pass
    return None


def _parent() -> tuple[Path, str] | None:
    """Where worker cgroups go: under this process's own memory cgroup on v1 (so a worker
    stays inside whatever limits the driver runs under), else where :mod:`.limits` puts them."""
    own = _own_v1_memory_group()
    if own is not None and own.is_dir() and os.access(own, os.W_OK):
        return own, "v1"
    return _cgroup_parent()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


class WorkerCgroup:
    """A memory cgroup of its own for one worker process, with an optional limit.

    ``WorkerCgroup.create(limit_mb)`` returns None where no cgroup can be made (not root, no
    writable hierarchy): detection then rests on the kernel log alone.
    """

    def __init__(self, path: Path, kind: str):
        self.path, self.kind = path, kind

    @classmethod
    def create(cls, limit_mb: float | None = None) -> "WorkerCgroup | None":
        found = _parent()
        if found is None:
            return None
        parent, kind = found
        _remove_orphans(parent)
        path = parent / f"{PREFIX}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            path.mkdir()
            if limit_mb:
                write_memory_limit(path, kind, limit_mb)
        except OSError:
            try:
                path.rmdir()
            except OSError:
                pass
            return None
        return cls(path, kind)

    def join_self(self) -> None:
        """Move the calling process in (a ``preexec_fn``: runs in the child before exec)."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def oom_kills(self) -> int:
        """How many of its processes an OOM killer has killed so far."""
        name = "memory.events" if self.kind == "v2" else "memory.oom_control"
        try:
            for line in (self.path / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def remove(self) -> None:
        for _ in range(20):   # the killed process may take a moment to leave
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                import time
                time.sleep(0.05)


def own_oom_kills() -> int | None:
    """OOM kills counted so far by this process's own memory cgroup, which holds its children
    too (a model back end's runner: :mod:`eksfold.models.openfold3.folder`); None where the
    cgroup's counter cannot be read."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, rel = line.split(":", 2)
        if controllers == "":
            group = WorkerCgroup(CGROUP / rel.lstrip("/"), "v2")
        elif "memory" in controllers.split(","):
            group = WorkerCgroup(CGROUP / "memory" / rel.lstrip("/"), "v1")
        else:
            continue
        name = "memory.events" if group.kind == "v2" else "memory.oom_control"
        if (group.path / name).is_file():
            return group.oom_kills()
    return None


def _remove_orphans(parent: Path) -> None:
    """Empty worker cgroups left by a driver that was killed (its pid is in the name)."""
    for group in parent.glob(f"{PREFIX}-*"):
        try:
            pid = int(group.name.split("-")[2])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and not _alive(pid):
            try:
                group.rmdir()
            except OSError:
                pass


class KernelLog:
    """The kernel log from now on (``/dev/kmsg`` opened at its end); None-safe where unreadable."""

    def __init__(self):
        try:
            self.fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
            os.lseek(self.fd, 0, os.SEEK_END)
        except OSError:
            self.fd = None

    def oom_killed(self, pid: int) -> str | None:
        """The kernel's message if it OOM-killed ``pid`` since this log was opened."""
        if self.fd is None:
            return None
        found = None
        while True:
            try:
                rec = os.read(self.fd, 16384).decode("utf-8", "replace")
            except BlockingIOError:
                break
            except BrokenPipeError:   # records overwritten under us: go on with the next one
                continue
            except OSError:
                break
            message = rec.split(";", 1)[-1].strip()
            m = _KILLED.search(message)
            if m and int(m.group(1)) == pid:
                found = message
        return found

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def death_cause(pid: int, returncode: int, cgroup: WorkerCgroup | None, kills_before: int,
                kmsg: KernelLog | None) -> tuple[str, str] | None:
    """``(cause, evidence)`` for a worker that was killed, None for one that exited itself.

    ``oom`` needs the kernel's word: the worker's cgroup counted an OOM kill since it started
    (``kills_before``), or the kernel log names ``pid``; any other kill is ``unknown``.
    """
    if returncode is None or returncode >= 0:
        return None
    sig = -returncode
    try:
        name = signal.Signals(sig).name
    except ValueError:
        name = f"signal {sig}"
    if sig == signal.SIGKILL:
        said = kmsg.oom_killed(pid) if kmsg is not None else None
        if said:
            return OOM, f"worker pid {pid}: kernel log: {said[:300]}"
        counted = cgroup.oom_kills() - kills_before if cgroup is not None else 0
        if counted > 0:
            return OOM, (f"worker pid {pid} ended by SIGKILL; its memory cgroup {cgroup.path} "
                         f"counted {counted} OOM kill(s)")
    return UNKNOWN, f"worker pid {pid} ended by {name}; no out-of-memory record of it"
