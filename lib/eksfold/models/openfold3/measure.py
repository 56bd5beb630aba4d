"""One point of the OpenFold3 settings sweep (``eksfold bench settings --preset of3-tiny``).

Called in a fresh process by :func:`eksfold.memory.measure.run_point` (through
:meth:`OpenFold3.measure_point`). The point is what a warm worker does: the runner child
started in ``.venv-of3`` (:class:`.folder.OpenFold3Folder`, network built and checkpoint loaded
once), switched to the setting, then one single-sequence protein query of ``length`` tokens.
``peak_rss_mb`` is the runner child's own peak during the query (its ``VmHWM``, reset after
loading): the runner's resident memory after loading plus what the fold adds, the figure
:meth:`eksfold.memory.usage.UnitMemory.count_child` adds to a unit's peak in a worker.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path


def measure_point(length: int, setting: str, preset: str = "of3-tiny", device: str = "cpu",
                  weights: str = "random", threads: int | None = None,
                  sequence: str | None = None, **_ignored) -> dict:
    """One point: a fresh runner, one query (the generic sweep's fresh-process point)."""
    return measure_series([length], setting, preset, device, weights, threads,
                          [sequence] if sequence else None)[0]


def measure_series(lengths, setting: str, preset: str = "of3-tiny", device: str = "cpu",
                   weights: str = "random", threads: int | None = None,
                   sequences=None, log=None) -> list[dict]:
    """Every length in order with one runner, as a warm worker folds unit after unit: a row
    per length, its ``peak_rss_mb`` the runner's own peak in that query (``VmHWM`` reset
    before each). In ascending order what the runner keeps after a query stays below the
    next query's peak (``runner_rss_start_mb`` says what it held when the query began)."""
    from ...bench.common import synthetic_sequence
    from ...config import InferConfig
    from ...memory.usage import status_mb
    from ...models import get_backend
    from ...targets import Target
    from .folder import _device

    backend = get_backend(preset)
    config = InferConfig(preset=preset, weights=weights, device=device, threads=threads)
    _ensure_checkpoint(backend, config)
    t0 = time.perf_counter()
    folder = backend.load(config)
    load_s = time.perf_counter() - t0
    rows = []
    try:
        if setting != backend.as_built_setting:
            folder.apply_setting(setting)
        for i, length in enumerate(lengths):
            seq = sequences[i] if sequences else synthetic_sequence(length)
            start_rss = status_mb("VmRSS", folder.proc.pid)
            with tempfile.TemporaryDirectory(prefix="eksfold-of3-settings-") as tmp:
                m = folder.fold(Target(f"bench-{len(seq)}", seq), None, Path(tmp) / "out")
            rows.append({
                "length": len(seq), "setting": setting, "preset": preset, "templates": 0,
                "template_stack": True, "device": _device(device),
                "device_name": _device(device), "threads": threads, "warmup": False,
                "inference_s": m["inference_s"], "child_cpu_s": m["child_cpu_s"],
                "feature_s": None, "model_load_s": round(load_s, 3) if i == 0 else None,
                "peak_rss_mb": m["child_peak_rss_mb"],
                "runner_rss_loaded_mb": round(folder.runner_rss_mb_after_load, 1),
                "runner_rss_start_mb": None if start_rss is None else round(start_rss, 1),
                "tokens": m["tokens"], "atoms": m["atoms"], "series": len(lengths) > 1,
                "peak_cuda_alloc_mb": None, "peak_cuda_reserved_mb": None,
                "untrained": m["untrained"], "error": None})
            if log:
                log(rows[-1])
    finally:
        folder.close()
    return rows


def _ensure_checkpoint(backend, config) -> None:
    """Make a random checkpoint in a runner of its own first: made inside the measured
    runner, its construction would sit in that runner's memory when the point starts."""
    from .folder import OpenFold3Folder

    probe = OpenFold3Folder(backend, config)
    try:
        path, options = probe._checkpoint()
        if options and not path.is_file():
            probe.load()
    finally:
        probe.close()
