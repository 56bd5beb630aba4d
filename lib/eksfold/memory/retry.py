"""Out-of-memory detection and the one-retry fallback to the next lower-memory setting.

The warm worker calls :func:`fold_with_oom_fallback` with a callable that applies a setting to
its already-built model and folds; an out-of-memory failure frees what it can and tries the
next setting down the ladder in the same process (no restart, no rebuild). Every attempt is
returned for the unit's record.
"""
from __future__ import annotations

import gc
import time

from ..errors import ResourceError
from ..models import get_backend
from .kills import OOM


def next_lower(setting: str, device_type: str = "cpu", settings=None, backend=None) -> str | None:
    """The back end's next lower-memory setting (default: the default preset's family)."""
    return (backend or get_backend()).next_lower(setting, device_type, settings)

# Messages of the allocation failures torch and the C library raise (checked on torch 2.x):
# CPU: "[enforce fail at alloc_cpu.cpp:...] ... DefaultCPUAllocator: can't allocate memory"
OOM_MESSAGES = ("CUDA out of memory", "enforce fail at alloc_cpu.cpp",
                "DefaultCPUAllocator: can't allocate memory", "CUDA error: out of memory",
                "Cannot allocate memory", "HIP out of memory")


def is_out_of_memory(exc: BaseException | None) -> bool:
    """True when ``exc`` (or an exception it was raised from) is an allocation failure."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, MemoryError):  # also numpy's _ArrayMemoryError
            return True
        if type(exc).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError
            return True
        if isinstance(exc, RuntimeError) and any(m in str(exc) for m in OOM_MESSAGES):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _free_memory() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def fold_with_oom_fallback(fold, start: str, device_type: str = "cpu", retries: int = 1,
                           target: str | None = None, settings=None, log=None, backend=None):
    """Run ``fold(setting_name)``; on out-of-memory retry with the next lower setting.

    Parameters
    ----------
    fold : callable
        ``fold(setting_name) -> result``; it must apply the setting itself (e.g.
        ``folder.apply_setting(name)``) so each attempt really uses it.
    start : str
        The first setting (usually ``choose(...).setting``).
    retries : int
        How many lower settings to try after the first out-of-memory failure (the issue
        asks for one).
    target : str, optional
        Named in the error raised when every attempt ran out of memory.
    settings : iterable of str, optional
        The ladder to walk (default: every setting usable on ``device_type``).
    backend : ModelBackend, optional
        Whose ladder (default: the default preset's family).

    Returns
    -------
    (result, attempts)
        ``attempts`` is a list of ``{"setting", "error", "wall_s"}``, one per try; ``error`` is
        None for the one that succeeded.

    Raises
    ------
    ResourceError
        Every attempt ran out of memory (or there was no lower setting): a resource refusal,
        retryable where more memory is free, never bad input; carries ``.attempts``. Other
        exceptions propagate unchanged.
    """
    attempts, setting = [], start
    while True:
        t0 = time.perf_counter()
        try:
            result = fold(setting)
        except BaseException as exc:  # noqa: BLE001 - only out-of-memory is handled below
            if not is_out_of_memory(exc):
                raise
            attempts.append({"setting": setting, "error": f"{type(exc).__name__}: {str(exc)[:300]}",
                             "wall_s": round(time.perf_counter() - t0, 3)})
            if getattr(exc, "killed", None):   # a back end's child killed for memory (OOM)
                attempts[-1]["killed"] = exc.killed
        else:
            attempts.append({"setting": setting, "error": None,
                             "wall_s": round(time.perf_counter() - t0, 3)})
            return result, attempts
        # Outside the except block: only now are the failed attempt's frames (and the tensors
        # they hold) unreachable, so collecting here really frees them before the retry.
        _free_memory()
        lower = next_lower(setting, device_type, settings, backend)
        if lower is None or len(attempts) > retries:
            tried = ", ".join(a["setting"] for a in attempts)
            err = ResourceError(target or "?", f"out of memory with settings {tried}"
                                + ("" if lower else " (no lower-memory setting left)"))
            err.attempts = attempts
            raise err
        if log:
            log(f"out of memory with setting {setting!r}; retrying with {lower!r}")
        setting = lower


def setting_after_kill(start: str, attempts: list[dict], device_type: str = "cpu",
                       settings=None, backend=None) -> str | None:
    """The setting a unit should fold with now, given its earlier attempts that were killed.

    ``attempts`` are the unit's attempt markers (``{"setting", "finished", "killed"}``, see
    :class:`eksfold.stages.infer.Attempts`), each killed one resolved against the executor's
    kill records (:mod:`eksfold.memory.kills`). Only a kill known to be for memory
    (``killed == "oom"``) steps down: the next setting below the one that was killed (or
    ``start`` when that is lower already). An unfinished attempt of unknown cause (a user's
    kill, a spot reclaim, the driver dying with its workers) changes nothing: the same setting
    is tried again. None: killed for memory with the most frugal setting (no rung left).
    """
    backend = backend or get_backend()
    order = [s.name for s in backend.ladder(device_type, settings)]
    rank = order.index(start) if start in order else 0
    for attempt in attempts:
        if attempt.get("killed") != OOM or attempt.get("setting") not in order:
            continue
        lower = next_lower(attempt["setting"], device_type, settings, backend)
        if lower is None:
            return None
        rank = max(rank, order.index(lower))
    return order[rank] if start in order or rank else start
