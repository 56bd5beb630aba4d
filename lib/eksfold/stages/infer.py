"""The ``infer`` stage: the preset's model back end on one target's alignments, the network
built once per worker.

Outputs: the back end's (:attr:`eksfold.models.ModelBackend.outputs`; OpenFold: ``unrelaxed.pdb``,
``plddt.npy``, ``pae.npy`` for pTM presets) and ``unrelaxed.cif`` (confidence as B-factors).

:meth:`InferStage.open` asks the back end to build the network (preset, weights, device) and
warm it up on CUDA; every unit then only computes features and the fold
(:meth:`eksfold.models.ModelBackend.load`).

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
import time
from pathlib import Path

from ..errors import ResourceError, TargetError
from ..memory.kills import OOM
from ..models import get_backend
from ..targets import Target
from .base import Resources, Stage

log = logging.getLogger(__name__)
LOW_MEMORY_ENV = "EKSFOLD_LOW_MEMORY"   # set by Jobs for very long targets


class InferStage(Stage):
    name = "infer"
    title = "inference"
    depends_on = "align"
    pool = "gpu"
    runs_model = True
    outputs = ("unrelaxed.pdb", "unrelaxed.cif", "plddt.npy")
    summary_columns = {"feature_s": "feature_s", "inference_s": "inference_s",
                       "infer_peak_rss_mb": "peak_rss_mb",
                       "infer_peak_rss_scope": "peak_rss_scope",
                       "infer_rss_start_mb": "rss_start_mb", "infer_rss_end_mb": "rss_end_mb",
                       "peak_cuda_mb": "peak_cuda_mb",
                       "device": "device", "preset": "preset", "weights": "weights",
                       "untrained": "untrained", "mean_plddt": "mean_plddt", "ptm": "ptm",
                       # complexes (#24, OpenFold3): None for single-chain families
                       "chains": "chains", "tokens": "tokens", "iptm": "iptm",
                       "ranking_score": "ranking_score", "paired_msa_rows": "paired_msa_rows",
                       # templates (#20): eksfold.templates.featurize's record
                       "templates_used": "templates_used", "top_template": "top_template",
                       "top_template_identity": "top_template_identity",
                       "top_template_coverage": "top_template_coverage",
                       "top_template_date": "top_template_date"}

    def backend(self):
        """The run's model back end (the default preset's when there is no run: the planner)."""
        infer = getattr(getattr(self, "config", None), "infer", None)
        return get_backend(infer.preset if infer is not None else None)

    def resources(self, length: int) -> Resources:
        cpu, memory_gb, gpu = self.backend().resources(length)
        return Resources("gpu", cpu=cpu, memory_gb=memory_gb, gpu=gpu)

    fixed_cost_s = 30.0   # the default family's (ModelBackend.fixed_cost_s); shard sizing reads it

    def predicted_seconds(self, length: int) -> float:
        return self.backend().predicted_seconds(length)

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
        from ..memory.chooser import usable_model
        from ..memory.usage import release, rss_mb

        config = self.infer_config()
        self.model_backend = get_backend(config.preset)
        self.folder = self.model_backend.load(config)
        # template inputs (#20): the back end attaches them when its preset uses templates
        self.model_backend.attach_templates(self.folder, self.config)
        self._fixed_cost = dict(self.folder.timings)   # reported once, on the first unit
        self.device_type = self.folder.device_type
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

        name, backend = self.config.infer.settings, self.backend()
        if name == backend.as_built_setting:   # e.g. --settings openfold
            return {"setting": name, "chosen_by": "run settings (the preset's network as built)"}
        if name != "auto":
            return {"setting": name, "chosen_by": "run settings"}
        if self.cost_model is None:   # no sweep for this preset/device: the back end's default
            return {"setting": backend.default_setting,
                    "chosen_by": f"no cost model ({self.cost_model_error})"}
        # read now, not at start: other processes, and this worker's own holdings, change it
        budget, baseline = memory_budget(str(self.folder.device)), self.baseline_mb
        child = getattr(self.folder, "folding_child", lambda: None)()
        if child is not None and self.device_type == "cpu":
            # the fold runs in a child (OpenFold3's runner): the sweep measured its peak
            budget, baseline = budget.for_child(child["rss_mb"]), child["baseline_mb"]
        granted = read_grant(self.run.store, self.name, target.id)   # beside other units
        # rungs usable here (the fallback walks the same ladder), where the model has any
        usable = [s.name for s in backend.ladder(self.device_type)]
        choice = choose_in_worker(target.length, budget, baseline, self.cost_model,
                                  granted_mb=granted,
                                  settings=usable if set(usable) & set(self.cost_model.settings)
                                  else None,
                                  templates=backend.templates_per_fold(self.folder))
        return {"setting": choice["setting"], "chosen_by": f"auto ({choice['budget_source']})",
                "choice": choice}

    def run_unit(self, target: Target, inputs: Path | None, out: Path) -> dict:
        from ..memory.retry import fold_with_oom_fallback, setting_after_kill
        from ..structure_io import to_mmcif

        chosen = self.choose_setting(target)
        markers = Attempts(self.run.store, target.id)
        as_built = self.model_backend.as_built_setting
        history = markers.resolve()   # earlier attempts of this unit that were killed, and how
        start = (as_built if chosen["setting"] == as_built
                 else setting_after_kill(chosen["setting"], history, self.device_type,
                                         backend=self.model_backend))
        if start is None:   # killed for memory even with the most frugal setting
            markers.clear()   # a later rerun (a bigger node, more memory free) starts afresh
            raise self._refusal(target, history, markers.as_record(history))

        def fold(name: str) -> dict:
            if name != as_built:
                self.folder.apply_setting(name)   # switches the built model, no rebuild
            markers.begin(name)
            try:
                return self.folder.fold(target, inputs, out)
            finally:
                markers.end()

        earlier = markers.as_record(history)
        try:
            if start == as_built:   # no ladder to fall back on: the family's own settings, once
                metrics, attempts = fold(start), [{"setting": start, "error": None}]
            else:
                metrics, attempts = fold_with_oom_fallback(fold, start, self.device_type,
                                                           retries=1, target=target.id,
                                                           log=log.warning,
                                                           backend=self.model_backend)
        except ResourceError as exc:
            markers.clear()
            exc.predicted_mb, exc.available_mb = self._memory_figures(target, exc.attempts[-1]["setting"])
            exc.attempts = earlier + exc.attempts
            raise
        # the record keeps every try (UnitRecord.attempts): kills and out-of-memory retries
        metrics.update(chosen, setting=attempts[-1]["setting"], attempts=earlier + attempts,
                       # the worker's resident memory after loading: what it kept after this
                       # unit is rss_end_mb minus this (eksfold.memory.runreport)
                       worker_baseline_mb=(None if self.baseline_mb is None
                                           else round(self.baseline_mb, 1)))
        markers.clear()
        # mmCIF beside the PDB, pLDDT in B_iso, as the AlphaFold Database distributes models
        # (a family that writes its own mmCIF keeps it)
        if not (out / "unrelaxed.cif").exists():
            (out / "unrelaxed.cif").write_text(to_mmcif((out / "unrelaxed.pdb").read_text(),
                                                        name=target.id))
        metrics.update(self._fixed_cost, model_reused=not self._fixed_cost)
        self._fixed_cost = {}
        return metrics

    def _memory_figures(self, target: Target, setting: str) -> tuple[float | None, float | None]:
        """(predicted MB for ``setting``, available MB now): what a refusal reports."""
        from ..memory.chooser import memory_budget

        predicted = None
        if getattr(self, "cost_model", None) is not None and setting in self.cost_model.settings:
            predicted = self.cost_model.predict(
                target.length, setting,
                templates=self.model_backend.templates_per_fold(self.folder))
        return predicted, memory_budget(str(self.folder.device)).mb

    def _refusal(self, target: Target, history: list, attempts: list) -> ResourceError:
        last = next(a["setting"] for a in reversed(history) if a.get("killed") == OOM)
        predicted, available = self._memory_figures(target, last)
        err = ResourceError(target.id, f"killed for memory even with the most frugal setting "
                                       f"({last!r})", predicted, available)
        err.attempts = attempts
        return err

    def close(self) -> None:
        self.folder = None


class Attempts:
    """Which setting a unit is folding with, kept in the run root while it runs.

    A process the kernel kills for memory (a Pod OOMKilled) records nothing itself: the next
    attempt of the unit finds the unfinished marker and resolves it (:meth:`resolve`) against
    what the executor saw (:mod:`eksfold.memory.kills`): ``"oom"`` only with the executor's
    evidence, else ``"unknown"``. Markers written before kills were recorded (no ``killed``
    field, no kill record) resolve to ``"unknown"``: a stale root recovers on rerun.
    """

    def __init__(self, store, target_id: str):
        self.store, self.target = store, target_id
        self.rel = f"attempts/infer/{target_id}.json"

    def load(self) -> list:
        try:
            found = self.store.read_json(self.rel)
        except (FileNotFoundError, ValueError):
            return []
        return found if isinstance(found, list) else []

    def resolve(self) -> list:
        """Every marker, each unfinished one given ``killed`` (its cause) and ``kills`` (the
        executor's records of it); new kill records go to the latest unfinished attempt, or
        to a marker of their own (``setting`` None: killed before any fold began)."""
        from ..memory.kills import OOM, UNKNOWN, read_kills

        markers, kills = self.load(), read_kills(self.store, "infer", self.target)
        seen = sum(len(m.get("kills", [])) for m in markers)
        new = kills[seen:]
        open_ = [m for m in markers if not m.get("finished", True) and "killed" not in m]
        for m in open_:
            m["killed"], m["kills"] = UNKNOWN, []
        if new:
            if open_:
                holder = open_[-1]
            else:
                holder = {"setting": None, "finished": False}
                markers.append(holder)
            holder["kills"] = new
            holder["killed"] = OOM if any(k.get("cause") == OOM for k in new) else UNKNOWN
        if open_ or new:
            self.store.write_json(self.rel, markers)
        return markers

    @staticmethod
    def as_record(markers: list) -> list:
        """The killed attempts as UnitRecord ``attempts`` entries."""
        out = []
        for m in markers:
            if "killed" not in m:
                continue
            evidence = "; ".join(k.get("evidence", "") for k in m.get("kills", []))
            why = ("killed for memory" if m["killed"] == "oom" else "killed (cause unknown)")
            out.append({"setting": m.get("setting"), "error": why + (f": {evidence}" if evidence
                                                                     else ": no kill record"),
                        "killed": m["killed"]})
        return out

    def begin(self, setting: str) -> None:
        self.store.write_json(self.rel, self.load() + [{"setting": setting, "finished": False,
                                                        "began": time.time()}])

    def end(self) -> None:
        done = self.load()
        if done:
            done[-1]["finished"] = True
            self.store.write_json(self.rel, done)

    def clear(self) -> None:
        from ..memory.kills import clear_kills

        try:
            self.store.delete(self.rel)
        except FileNotFoundError:
            pass
        clear_kills(self.store, "infer", self.target)
