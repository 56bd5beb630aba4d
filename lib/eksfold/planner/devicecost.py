"""Predicted seconds of one unit on the device that will run it: what the Kubernetes executor
shards with, and the planner's per-unit costs.

The stage classes' ``predicted_seconds`` describe this project's 2-core CPU machine (the demo
preset's inference on CPU); on EKS a shard runs on an alignment Pod or a GPU, so sizing with
them would pack GPU shards by a CPU formula. Here:

- ``infer`` on a GPU: a committed GPU profile (``profiles/gpu-*``, measured by
  ``tools/gpu_check.sh``) when one exists, else the reference profile (AlphaFold2's published
  V100 times: literature, not measured), unscaled (the executor does not know the node's GPU
  type; only relative costs and the fixed-cost ratio matter for sharding);
- ``align``: the reference jackhmmer planning figure divided by the measured MMseqs2 speedup
  (:func:`eksfold.planner.costs.align_curve`);
- ``relax``: the measured curve of ``profiles/cpu-2core/relax.csv``;
- anything else (a CPU inference, a stage added later): the stage class's own prediction.

>>> seconds, source = unit_seconds("infer", 384, gpu=True)
>>> round(seconds), "reference" in source or "measured" in source
(66, True)
"""
from __future__ import annotations

import functools

from ..errors import EksfoldError


@functools.lru_cache(maxsize=8)
def _costs(msa_mode: str, sensitivity: float | None):
    from ..memory.costmodel import PROFILES
    from .costs import gpu_profile_costs, reference_costs

    for name in sorted(p.name for p in PROFILES.glob("gpu-*") if p.is_dir()):
        try:
            return gpu_profile_costs(name, msa_mode)
        except EksfoldError:
            continue      # a GPU profile without a CUDA fit for this preset: the next / reference
    costs = reference_costs(msa_mode)
    if sensitivity is not None and msa_mode == "mmseqs2":
        from .costs import align_curve

        try:
            costs.curves["align"], costs.sources[1] = align_curve(msa_mode,
                                                                  sensitivity=sensitivity)
        except EksfoldError as exc:   # not measured at this sensitivity: the benchmark's choice
            costs.sources[1] += f" (-s {sensitivity:g} not measured: {exc})"
    return costs


def unit_seconds(stage: str, length: int, *, gpu: bool = False, msa_mode: str = "jackhmmer",
                 sensitivity: float | None = None) -> tuple[float, str]:
    """(seconds, source) of one ``stage`` unit of ``length`` residues on its device."""
    if stage == "infer" and not gpu or stage not in ("align", "infer", "relax"):
        from .costs import stage_costs

        return stage_costs(msa_mode).work(stage, length), f"{stage}: the stage class's predicted_seconds"
    costs = _costs(msa_mode, sensitivity)
    source = next((s for s in costs.sources if s.startswith(stage)), stage)
    return costs.work(stage, length), source
