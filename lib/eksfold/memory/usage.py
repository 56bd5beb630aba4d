"""Per-unit memory of a warm worker: each unit's own peak, what the worker holds, and giving
freed memory back.

A warm worker runs many units in one process, so the process's lifetime high-water mark
(``ru_maxrss``) says nothing about one unit: after a long fold every later unit would report
the same figure. Per unit, :class:`UnitMemory` therefore

* resets the kernel's high-water mark at unit start (writing ``5`` to ``/proc/self/clear_refs``
  resets ``VmHWM`` to the current RSS, Linux >= 4.0) and reads ``VmHWM`` at the end; where the
  reset is refused it samples ``VmRSS`` in a thread instead (``scope`` says which);
* on CUDA, resets torch's peak statistics, so ``max_memory_allocated`` is the unit's own;
* records the worker's resident memory at unit start and at the end, before and after
  :func:`release` (``gc``, glibc ``malloc_trim(0)``, torch's CUDA cache), so what a worker
  keeps after a fold of a given length is measured, not assumed.

Scopes written into records (``peak_rss_scope``): ``"unit"`` (reset high-water mark),
``"unit-sampled"`` (sampled), ``"process"`` (lifetime figure: old records, one-shot calls).
Only unit scopes are fitted or plotted against length (:func:`own_peak`).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
import threading
from pathlib import Path

CLEAR_REFS = Path("/proc/self/clear_refs")
UNIT_SCOPES = ("unit", "unit-sampled")
SAMPLE_S = 0.02

_libc = None


def status_mb(key: str, pid: int | str = "self") -> float | None:
    """A ``/proc/<pid>/status`` memory field (``VmRSS``, ``VmHWM``) in MB; None if the process
    or the field is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def tree_pids(pid: int) -> list[int]:
    """``pid`` and its descendants now (``/proc/<pid>/task/*/children``); gone ones left out."""
    out, todo = [], [int(pid)]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            try:
                todo.extend(int(c) for c in task.read_text().split())
            except OSError:
                pass
    return out


def rss_mb() -> float:
    """This process's resident memory now, MB (0 where /proc is missing)."""
    return status_mb("VmRSS") or 0.0


def hwm_mb() -> float | None:
    """The kernel's high-water mark of this process's RSS since start or the last reset."""
    return status_mb("VmHWM")


def process_hwm_mb(pid: int) -> float | None:
    """Another process's high-water mark (a model back end's child), MB; None if it is gone."""
    return status_mb("VmHWM", pid)


def reset_process_hwm(pid: int) -> bool:
    """Reset another process's ``VmHWM`` (same user: allowed), so its next reading is one
    unit's own peak."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def reset_hwm() -> bool:
    """Reset ``VmHWM`` to the current RSS; False where the kernel refuses (then sample)."""
    try:
        CLEAR_REFS.write_text("5")
    except OSError:
        return False
    hwm, rss = hwm_mb(), rss_mb()
    # a kernel that accepts the write but ignores "5" leaves the old mark well above RSS
    return hwm is not None and hwm <= rss + 16


def _malloc_trim() -> bool:
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        try:
            _libc = ctypes.CDLL(name) if name else False
        except OSError:
            _libc = False
    if not _libc or not hasattr(_libc, "malloc_trim"):   # musl, macOS: nothing to call
        return False
    _libc.malloc_trim(0)
    return True


def release() -> dict:
    """Give freed memory back: Python's cycles, glibc's free heap pages (``malloc_trim(0)``:
    torch's CPU allocator frees to glibc, which keeps the pages mapped), torch's CUDA cache.
    Returns the RSS before and after, MB."""
    before = rss_mb()
    gc.collect()
    trimmed = _malloc_trim()
    torch = sys.modules.get("torch")   # only if this process uses torch already
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
    return {"rss_before_release_mb": round(before, 1), "rss_end_mb": round(rss_mb(), 1),
            "malloc_trim": trimmed}


class _Sampler(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.stop = rss_mb(), threading.Event()

    def run(self):
        while not self.stop.wait(SAMPLE_S):
            self.peak = max(self.peak, rss_mb())


class UnitMemory:
    """One unit's memory: ``start()`` before it, ``finish()`` after (then ``figures``).

    ``peak_mb()`` may be read during the unit (the inference stage puts it in its metrics).
    """

    current: "UnitMemory | None" = None   # the unit running in this process now

    def __init__(self, device: str | None = None):
        self.device = device
        self.scope, self.rss_start_mb, self.figures = "process", None, {}
        self._sampler = None
        self.child_peak_mb = 0.0   # a back end's helper process (OpenFold3's runner)

    def count_child(self, peak_mb: float | None) -> None:
        """Add a child process's peak during this unit (:meth:`finish` reports own + child:
        both are resident together, and the kernel's limit counts both)."""
        self.child_peak_mb = max(self.child_peak_mb, peak_mb or 0.0)

    def start(self) -> "UnitMemory":
        self.rss_start_mb = round(rss_mb(), 1)
        if reset_hwm():
            self.scope = "unit"
        else:
            self.scope, self._sampler = "unit-sampled", _Sampler()
            self._sampler.start()
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.reset_peak_memory_stats()
        UnitMemory.current = self
        return self

    def peak_mb(self) -> float:
        """The unit's peak RSS so far, MB."""
        now = rss_mb()
        if self._sampler is not None:
            return max(self._sampler.peak, now)
        return max(hwm_mb() or now, now)

    def finish(self, release_memory: bool = True) -> dict:
        """Stop measuring; returns (and keeps in ``figures``) the unit's memory figures."""
        peak = self.peak_mb()
        if self._sampler is not None:
            self._sampler.stop.set()
            self._sampler.join()
            peak = max(peak, self._sampler.peak)
        figures = {"peak_rss_mb": round(peak + self.child_peak_mb, 1),
                   "peak_rss_scope": self.scope, "rss_start_mb": self.rss_start_mb}
        if self.child_peak_mb:
            figures["child_peak_rss_mb"] = round(self.child_peak_mb, 1)
        if release_memory:
            figures.update(release())
        else:
            figures["rss_end_mb"] = round(rss_mb(), 1)
        if UnitMemory.current is self:
            UnitMemory.current = None
        self.figures = figures
        return figures


def unit_peak() -> tuple[float, str]:
    """(peak RSS MB, scope) for the unit running now, or the process's lifetime figure."""
    unit = UnitMemory.current
    if unit is not None:
        return round(unit.peak_mb(), 1), unit.scope
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), "process"


def own_peak(df, scope_col: str = "infer_peak_rss_scope"):
    """Per row of a summary: whether its peak RSS is one unit's own (to fit or plot against
    length). Rows marked "process" hold a lifetime figure (records written before per-unit
    measurement); a table without ``scope_col`` (a benchmark's, one fresh process per point)
    is all own peaks."""
    import numpy as np

    if scope_col not in df:
        return np.ones(len(df), bool)
    return df[scope_col].isin(UNIT_SCOPES).to_numpy()
