"""One measured point of the settings sweep for this family: build, switch, time one forward pass.

Called in a fresh process by :func:`eksfold.memory.measure.run_point` (through
:meth:`OpenFold2.measure_point`), so its peak RSS is its own; on CUDA the peak counters are
reset after a warm-up pass and the timed pass is CUDA-synchronised.
"""
from __future__ import annotations

import time
from pathlib import Path


def measure_point(length: int, setting: str, preset: str = "demo", device: str = "auto",
                  weights: str = "random", threads: int | None = None,
                  coords_out: str | None = None, sequence: str | None = None) -> dict:
    """Build the model, switch it to ``setting`` and time one forward pass (in this process)."""
    import resource
    import tempfile

    import numpy as np
    import torch

    from ...bench.common import synthetic_sequence
    from ...config import InferConfig
    from ...targets import Target
    from .compat import prepare
    from .folder import WARMUP_LENGTH, build_model, forward, make_features, resolve_device
    from .presets import get_preset
    from .settings import apply

    prepare()
    dev = resolve_device(device)
    if dev.type == "cpu" and threads:
        torch.set_num_threads(threads)
    cfg = InferConfig(preset=preset, weights=weights, device=str(dev))
    t0 = time.perf_counter()
    model, of_config, info = build_model(get_preset(preset), cfg, dev)
    apply(setting, model)
    load_s = time.perf_counter() - t0
    seq = sequence or synthetic_sequence(length)
    with tempfile.TemporaryDirectory(prefix="eksfold-settings-") as tmp:
        aln = Path(tmp) / "aln"
        aln.mkdir()  # no MSA files: the single query sequence, as in `bench inference`
        t0 = time.perf_counter()
        _, processed = make_features(Target(f"bench-{len(seq)}", seq), aln, of_config)
        feature_s = time.perf_counter() - t0
        warm = dev.type == "cuda"  # on CPU the first pass has no kernel/allocator warm-up cost
        if warm:
            _, small = make_features(Target("warmup", seq[:WARMUP_LENGTH]), aln, of_config)
            forward(model, small, dev)
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
    t0 = time.perf_counter()
    out = forward(model, processed, dev)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    inference_s = time.perf_counter() - t0
    row = {"length": len(seq), "setting": setting, "preset": preset, "device": dev.type,
           "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
           "threads": torch.get_num_threads(), "warmup": warm,
           "inference_s": round(inference_s, 3), "feature_s": round(feature_s, 3),
           "model_load_s": round(load_s, 3),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
           "peak_cuda_alloc_mb": None, "peak_cuda_reserved_mb": None,
           "untrained": info["untrained"], "error": None}
    if dev.type == "cuda":
        row["peak_cuda_alloc_mb"] = round(torch.cuda.max_memory_allocated(dev) / 2**20, 1)
        row["peak_cuda_reserved_mb"] = round(torch.cuda.max_memory_reserved(dev) / 2**20, 1)
    if coords_out:
        np.savez(coords_out, positions=out["final_atom_positions"].cpu().numpy(),
                 mask=out["final_atom_mask"].cpu().numpy(), plddt=out["plddt"].cpu().numpy())
    return row
