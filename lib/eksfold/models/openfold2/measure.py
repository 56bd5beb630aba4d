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
                  coords_out: str | None = None, sequence: str | None = None,
                  templates: int = 0) -> dict:
    """Build the model, switch it to ``setting`` and time one forward pass (in this process).

    ``templates``: that many template structures in the features (:class:`StandInTemplates`),
    so the sweep measures the template stack a run with templates pays for."""
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
        _, processed = make_features(Target(f"bench-{len(seq)}", seq), aln, of_config,
                                     templates=StandInTemplates(templates) if templates else None)
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
           "templates": int(processed["template_aatype"].shape[0]) if templates else 0,
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


class StandInTemplates:
    """``count`` template structures for a sweep point, in OpenFold's raw feature layout.

    Memory and time of the template stack depend on the number of templates and the length,
    not on the coordinates, so each template is the query's own sequence on an ideal
    alpha-helix trace (backbone and CB atoms; 1.5 Å rise, 100° per residue), which keeps the
    template distogram, frames and torsion features finite. Passed to ``make_features`` where a
    run passes its :class:`~eksfold.templates.featurize.TemplateInputs`.
    """

    ATOMS = {"N": (-0.53, 1.36, -0.3), "CA": (0.0, 0.0, 0.0), "C": (1.52, 0.0, 0.0),
             "O": (2.15, -1.05, 0.1), "CB": (-0.53, -0.76, -1.2)}

    def __init__(self, count: int):
        self.count, self.record = int(count), {"templates_used": int(count),
                                               "templates_source": "stand-in (sweep)"}

    def features(self, target, alignment_dir) -> dict:
        import numpy as np
        from openfold.np import residue_constants as rc

        L = len(target.sequence)
        angle = np.deg2rad(100.0) * np.arange(L)
        ca = np.stack([2.3 * np.cos(angle), 2.3 * np.sin(angle), 1.5 * np.arange(L)], axis=1)
        positions = np.zeros((L, rc.atom_type_num, 3), np.float32)
        mask = np.zeros((L, rc.atom_type_num), np.float32)
        for atom, offset in self.ATOMS.items():
            positions[:, rc.atom_order[atom]] = ca + np.asarray(offset)
            mask[:, rc.atom_order[atom]] = 1.0
        aatype = rc.sequence_to_onehot(target.sequence, rc.HHBLITS_AA_TO_ID)
        tile = lambda a: np.repeat(a[None], self.count, axis=0)  # noqa: E731
        return {"template_aatype": tile(aatype).astype(np.float32),
                "template_all_atom_positions": tile(positions),
                "template_all_atom_mask": tile(mask),
                "template_sum_probs": np.ones((self.count, 1), np.float32),
                "template_domain_names": np.array([f"standin{i}".encode()
                                                   for i in range(self.count)], dtype=object)}
