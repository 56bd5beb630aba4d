"""The ``infer`` stage: OpenFold on one target's alignments, with the model built once per worker.

:meth:`InferStage.open` builds the model (preset, weights, device) and warms it up on CUDA;
every unit then only computes features and the forward pass (:class:`eksfold.inference.Folder`).

Metrics: ``feature_s``, ``inference_s`` (the forward pass alone, CUDA-synchronised),
``model_load_s`` / ``warmup_s`` (on the unit that paid them), ``mean_plddt``, ``ptm``,
``preset``, ``weights``, ``untrained``, ``weights_sha256``, ``device``, ``threads``,
``peak_rss_mb``, ``peak_cuda_mb``, ``msa_rows``.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

from ..targets import Target
from .base import Resources, Stage

log = logging.getLogger(__name__)
LOW_MEMORY_ENV = "EKSFOLD_LOW_MEMORY"   # set by Jobs for very long targets


class InferStage(Stage):
    name = "infer"
    title = "inference"
    depends_on = "align"
    pool = "gpu"
    outputs = ("unrelaxed.pdb", "plddt.npy")
    summary_columns = {"feature_s": "feature_s", "inference_s": "inference_s",
                       "infer_peak_rss_mb": "peak_rss_mb", "peak_cuda_mb": "peak_cuda_mb",
                       "device": "device", "preset": "preset", "weights": "weights",
                       "untrained": "untrained", "mean_plddt": "mean_plddt", "ptm": "ptm"}

    def resources(self, length: int) -> Resources:
        return Resources("gpu", cpu=4 if length <= 1000 else 8,
                         memory_gb=32 if length <= 1000 else 64, gpu=1)

    fixed_cost_s = 30.0   # Pod start + imports + model build + weights (+ CUDA warm-up)

    def predicted_seconds(self, length: int) -> float:
        # demo preset on 2 CPU cores: 24.5 s at L=100, ~L^1.77 (README benchmarks)
        return 1.0 + 0.0071 * length ** 1.77

    def infer_config(self):
        """The run's inference settings; a Job for a very long target asks for OpenFold's
        low-memory long-sequence settings through ``EKSFOLD_LOW_MEMORY=1``."""
        config = self.config.infer
        if os.environ.get(LOW_MEMORY_ENV) == "1" and "+long" not in config.preset:
            config = dataclasses.replace(config, preset=config.preset + "+long")
            log.info("%s=1: using preset %s", LOW_MEMORY_ENV, config.preset)
        threads = os.environ.get("EKSFOLD_THREADS")
        if threads and not config.threads:
            config = dataclasses.replace(config, threads=int(threads))
        return config

    def open(self) -> None:
        from ..inference import Folder

        self.folder = Folder(self.infer_config()).load()
        self._fixed_cost = dict(self.folder.timings)   # reported once, on the first unit

    def run_unit(self, target: Target, inputs: Path | None, out: Path) -> dict:
        metrics = self.folder.fold(target, inputs, out)
        metrics.update(self._fixed_cost, model_reused=not self._fixed_cost)
        self._fixed_cost = {}
        return metrics

    def close(self) -> None:
        self.folder = None
