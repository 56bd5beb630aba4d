"""The ``infer`` stage: OpenFold on one target's alignments, with the model built once per worker.

Outputs: ``unrelaxed.pdb`` and ``unrelaxed.cif`` (pLDDT as B-factors), ``plddt.npy``,
``pae.npy`` (pTM presets).

:meth:`InferStage.open` builds the model (preset, weights, device) and warms it up on CUDA;
every unit then only computes features and the forward pass (:class:`eksfold.inference.Folder`).

Metrics: ``feature_s``, ``inference_s`` (the forward pass alone, CUDA-synchronised),
``model_load_s`` / ``warmup_s`` (on the unit that paid them), ``mean_plddt``, ``ptm``,
``preset``, ``weights``, ``untrained``, ``weights_sha256``, ``device``, ``threads``,
``peak_rss_mb`` (the unit's own, ``peak_rss_scope``), ``peak_cuda_mb``, ``msa_rows``.
With ``--settings auto`` the chooser's budget is read before every unit (see
:func:`eksfold.memory.chooser.choose_in_worker`): the worker's limit, its resident memory now
and its baseline after loading.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

from ..errors import TargetError
from ..targets import Target
from .base import Resources, Stage

log = logging.getLogger(__name__)
LOW_MEMORY_ENV = "EKSFOLD_LOW_MEMORY"   # set by Jobs for very long targets
OPENFOLD = "openfold"   # --settings openfold: the preset's config untouched (OpenFold's script)


class InferStage(Stage):
    name = "infer"
    title = "inference"
    depends_on = "align"
    pool = "gpu"
    outputs = ("unrelaxed.pdb", "unrelaxed.cif", "plddt.npy")
    summary_columns = {"feature_s": "feature_s", "inference_s": "inference_s",
                       "infer_peak_rss_mb": "peak_rss_mb",
                       "infer_peak_rss_scope": "peak_rss_scope",
                       "infer_rss_start_mb": "rss_start_mb", "infer_rss_end_mb": "rss_end_mb",
                       "peak_cuda_mb": "peak_cuda_mb",
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
        from ..memory.chooser import usable_model
        from ..memory.usage import release, rss_mb

        config = self.infer_config()
        self.folder = Folder(config).load()
        self._fixed_cost = dict(self.folder.timings)   # reported once, on the first unit
        self.device_type = self.folder.device.type
        self.cost_model, self.cost_model_error = None, None
        if config.settings == "auto":
            self.cost_model, self.cost_model_error = usable_model(self.device_type, config.preset)
        # the worker's resident memory with the model loaded: a fresh process's, which the
        # sweep's predictions include; what it holds above this later is not free for a fold
        release()
        self.baseline_mb = rss_mb() if self.device_type == "cpu" else None

    def choose_setting(self, target: Target) -> dict:
        """The setting to start with: the run's own, or the fastest predicted to fit."""
        from ..memory.admission import read_grant
        from ..memory.chooser import choose_in_worker, memory_budget

        name = self.config.infer.settings
        if name == OPENFOLD:
            return {"setting": OPENFOLD, "chosen_by": "run settings (OpenFold's preset as built)"}
        if name != "auto":
            return {"setting": name, "chosen_by": "run settings"}
        if self.cost_model is None:   # no sweep for this preset/device: OpenFold's default
            return {"setting": "default", "chosen_by": f"no cost model ({self.cost_model_error})"}
        # read now, not at start: other processes, and this worker's own holdings, change it
        budget = memory_budget(str(self.folder.device))
        granted = read_grant(self.run.store, self.name, target.id)   # beside other units
        choice = choose_in_worker(target.length, budget, self.baseline_mb, self.cost_model,
                                  granted_mb=granted)
        return {"setting": choice["setting"], "chosen_by": f"auto ({choice['budget_source']})",
                "choice": choice}

    def run_unit(self, target: Target, inputs: Path | None, out: Path) -> dict:
        from ..memory import settings as msettings
        from ..memory.retry import fold_with_oom_fallback, setting_after_kill
        from ..structure_io import to_mmcif

        chosen = self.choose_setting(target)
        markers = Attempts(self.run.store, target.id)
        start = (OPENFOLD if chosen["setting"] == OPENFOLD
                 else setting_after_kill(chosen["setting"], markers.load(), self.device_type))
        if start is None:
            raise TargetError(target.id, "killed (out of memory?) with the most frugal setting")

        def fold(name: str) -> dict:
            if name != OPENFOLD:
                msettings.apply(name, self.folder.model)   # switches the built model, no rebuild
            markers.begin(name)
            try:
                return self.folder.fold(target, inputs, out)
            finally:
                markers.end()

        if start == OPENFOLD:   # no ladder to fall back on: OpenFold's own settings, once
            metrics, attempts = fold(start), [{"setting": start, "error": None}]
        else:
            metrics, attempts = fold_with_oom_fallback(fold, start, self.device_type, retries=1,
                                                       target=target.id, log=log.warning)
        # the record keeps every try (UnitRecord.attempts): out-of-memory retries are visible
        metrics.update(chosen, setting=attempts[-1]["setting"], attempts=attempts)
        markers.clear()
        # mmCIF beside the PDB, pLDDT in B_iso, as the AlphaFold Database distributes models
        (out / "unrelaxed.cif").write_text(to_mmcif((out / "unrelaxed.pdb").read_text(),
                                                    name=target.id))
        metrics.update(self._fixed_cost, model_reused=not self._fixed_cost)
        self._fixed_cost = {}
        return metrics

    def close(self) -> None:
        self.folder = None


class Attempts:
    """Which setting a unit is folding with, kept in the run root while it runs.

    A process the kernel kills for memory (a Pod OOMKilled) records nothing itself; the next
    attempt of the unit finds the unfinished marker and starts one setting lower.
    """

    def __init__(self, store, target_id: str):
        self.store, self.rel = store, f"attempts/infer/{target_id}.json"

    def load(self) -> list:
        try:
            return self.store.read_json(self.rel)
        except (FileNotFoundError, ValueError):
            return []

    def begin(self, setting: str) -> None:
        self.store.write_json(self.rel, self.load() + [{"setting": setting, "finished": False}])

    def end(self) -> None:
        done = self.load()
        if done:
            done[-1]["finished"] = True
            self.store.write_json(self.rel, done)

    def clear(self) -> None:
        self.store.delete(self.rel)
