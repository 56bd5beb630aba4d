"""Real memory limits for child processes: the budgets that tests and the zero-OOM check use.

Two kinds, because they fail differently, as the two production cases do:

* ``"rlimit"``: ``RLIMIT_DATA`` (private writable mappings: the heap and anonymous mmaps that
  torch's CPU allocator uses). An allocation past it fails inside the process with
  ``RuntimeError: [enforce fail at alloc_cpu.cpp...] DefaultCPUAllocator: can't allocate
  memory`` -- the in-process failure a warm worker can recover from. ``RLIMIT_AS`` would also
  count the shared libraries and the address space torch reserves, which do not use memory.
* ``"cgroup"``: a memory cgroup (v2 ``memory.max`` or v1 ``memory.limit_in_bytes``), what a
  Pod's memory limit is. Past it the kernel kills the process (SIGKILL, Kubernetes'
  OOMKilled). Needs a writable ``/sys/fs/cgroup``; :func:`cgroup_available` says.
"""
from __future__ import annotations

import os
import resource
import uuid
from contextlib import contextmanager
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def _cgroup_parent() -> tuple[Path, str] | None:
    """(folder to create child cgroups in, "v2"|"v1"), or None when not writable."""
    if (CGROUP / "cgroup.controllers").exists():
        here = Path("/proc/self/cgroup").read_text().strip().splitlines()[0].split(":", 2)[2]
        parent = CGROUP / here.lstrip("/")
        candidates = [(parent.parent if parent.name else parent, "v2"), (CGROUP, "v2")]
    else:
        candidates = [(CGROUP / "memory", "v1")]
    for folder, kind in candidates:
        if folder.is_dir() and os.access(folder, os.W_OK):
            return folder, kind
    return None


def cgroup_available() -> bool:
    return _cgroup_parent() is not None


def write_memory_limit(group: Path, kind: str, limit_mb: float) -> None:
    """Limit the cgroup ``group`` (``kind`` "v1" or "v2") to ``limit_mb``, with no swapping."""
    limit = str(int(limit_mb * 2**20))
    if kind == "v2":
        (group / "memory.max").write_text(limit)
        if (group / "memory.swap.max").exists():
            (group / "memory.swap.max").write_text("0")
        return
    (group / "memory.limit_in_bytes").write_text(limit)
    swap = group / "memory.memsw.limit_in_bytes"
    if swap.exists():  # no swapping around the limit
        try:
            swap.write_text(limit)
        except OSError:
            pass


@contextmanager
def memory_cgroup(limit_mb: float):
    """A fresh memory cgroup limited to ``limit_mb``; yields its ``cgroup.procs`` path."""
    found = _cgroup_parent()
    if found is None:
        raise OSError("no writable memory cgroup under /sys/fs/cgroup")
    parent, kind = found
    group = parent / f"eksfold-{uuid.uuid4().hex[:8]}"
    group.mkdir()
    try:
        write_memory_limit(group, kind, limit_mb)
        yield group / "cgroup.procs"
    finally:
        for _ in range(50):  # the child may still be exiting
            try:
                group.rmdir()
                break
            except OSError:
                import time
                time.sleep(0.1)


def peak_cgroup_mb(procs: Path) -> float | None:
    """The cgroup's recorded peak usage (v2 memory.peak, v1 max_usage_in_bytes)."""
    for name in ("memory.peak", "memory.max_usage_in_bytes"):
        f = procs.parent / name
        if f.exists():
            return round(int(f.read_text()) / 2**20, 1)
    return None


@contextmanager
def limited_child(limit_mb: float | None, kind: str = "rlimit"):
    """Popen keyword arguments that start a child under a ``limit_mb`` memory limit.

    ``kind`` is ``"rlimit"`` or ``"cgroup"`` (see the module docstring); None = no limit.
    """
    if not limit_mb:
        yield {}
        return
    if kind == "rlimit":
        nbytes = int(limit_mb * 2**20)

        def preexec():
            resource.setrlimit(resource.RLIMIT_DATA, (nbytes, nbytes))

        yield {"preexec_fn": preexec}
        return
    if kind != "cgroup":
        raise ValueError(f"unknown limit kind {kind!r}")
    with memory_cgroup(limit_mb) as procs:
        def join():
            procs.write_text(str(os.getpid()))

        yield {"preexec_fn": join, "cgroup_procs": procs}
