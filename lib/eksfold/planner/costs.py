"""What each unit and each worker costs in seconds: per target per stage, and the fixed costs.

Three sources, each stating where its figures come from (``Costs.sources``):

- :func:`reference_costs`: a named reference profile of published figures
  (``profiles/reference-af2-v100``: AlphaFold2's V100 inference times, MSA planning figures),
  scaled to each pool's GPU by :func:`gpu_speed`. For clusters: no GPU was measured.
- :func:`local_costs`: curves fitted to this machine's own unit records (the validation's
  calibration run), with the fixed costs measured in the same run.
- :func:`stage_costs`: the stage classes' own ``predicted_seconds`` and ``fixed_cost_s`` (what
  the executors shard with when nothing better is known).

Fixed costs not measured are the :class:`FixedCosts` defaults, each with its source.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from importlib.resources import files
from types import SimpleNamespace

import yaml

from ..errors import ConfigError

REFERENCE = "reference-af2-v100"
MSA_MODES = ("jackhmmer", "mmseqs2")


@dataclass
class FixedCosts:
    """Seconds paid once per node, per Pod or worker, and per unit (besides the unit itself)."""

    node_start_s: float = 150.0     # cluster/README.md: "a GPU node takes 2-5 minutes from zero"
    image_pull_s: float = 90.0      # ~15 GB worker image (ec2nodeclasses.yaml) at ~170 MB/s: stated
    pod_start_s: float = 10.0       # schedule, mount FSx, start the container: stated estimate
    worker_open_s: dict = field(default_factory=lambda: {"align": 5.0, "infer": 30.0,
                                                         "relax": 5.0})  # Stage.fixed_cost_s
    unit_overhead_s: dict = field(default_factory=lambda: {"align": 2.0, "infer": 5.0,
                                                           "relax": 2.0})  # features, commit
    startup_s: float = 0.0          # local: run creation until the first worker starts
    sources: dict = field(default_factory=lambda: {
        "node_start_s": "cluster/README.md (2-5 min from zero plus the image pull): 2.5 min",
        "image_pull_s": "stated: ~15 GB image at ~170 MB/s from ECR (not measured)",
        "pod_start_s": "stated estimate (not measured)",
        "worker_open_s": "the stage classes' fixed_cost_s (align 5 s, infer 30 s)",
        "unit_overhead_s": "stated: feature pipeline and record commit per target"})

    def worker(self, stage: str) -> float:
        return self.worker_open_s.get(stage, 5.0)

    def per_unit(self, stage: str) -> float:
        return self.unit_overhead_s.get(stage, 0.0)


class Costs:
    """Per-target seconds: ``seconds(stage, length, pool)`` (pool: a NodePool or None)."""

    def __init__(self, curves: dict, fixed: FixedCosts, sources: list[str], msa_mode: str,
                 reference_gpu: str | None = None):
        self.curves, self.fixed, self.sources, self.msa_mode = curves, fixed, sources, msa_mode
        self.reference_gpu = reference_gpu   # None: the curves are for the pool as it is
        self.memory_model = None             # a CUDA CostModel: GPU class routing by memory
        self.template_search = None          # the route whose search align units include

    def seconds(self, stage: str, length: int, pool=None) -> float:
        """The unit's work plus its per-unit overhead (features, commit)."""
        return self.work(stage, length, pool) + self.fixed.per_unit(stage)

    def work(self, stage: str, length: int, pool=None) -> float:
        """The unit's own seconds, without the per-unit overhead."""
        if stage not in self.curves:
            raise ConfigError(f"no cost model for stage {stage!r} (have {', '.join(self.curves)})")
        s = self.curves[stage](length)
        if self.reference_gpu and pool is not None and pool.gpu and stage in self.gpu_stages:
            s /= pool.gpu_speed or gpu_speed(pool.gpu, self.reference_gpu, pool.name)
        return s


    gpu_stages = ("infer",)


def gpu_speed(gpu: str, reference: str, pool: str = "?") -> float:
    """Inference speed of ``gpu`` relative to ``reference``: the geometric mean of the ratios of
    memory bandwidth and FP32 throughput (data-sheet figures in prices.yaml). An assumption
    (attention and triangle updates are partly bandwidth-, partly compute-bound), not a
    measurement; a cluster YAML can set ``gpu_speed`` per pool instead."""
    from .cluster import price_table

    gpus = price_table()["gpus"]
    for name in (gpu, reference):
        if name not in gpus:
            raise ConfigError(f"pool {pool}: GPU {name!r} is not in the price table "
                              f"({', '.join(gpus)}); give gpu_speed in the cluster YAML")
    g, r = gpus[gpu], gpus[reference]
    return math.sqrt(g["bandwidth_gbs"] / r["bandwidth_gbs"] * g["fp32_tflops"] / r["fp32_tflops"])


def loglog_curve(points: list[tuple[float, float]]):
    """Piecewise power law through ``(length, seconds)``, extended with the end slopes."""
    pts = sorted(points)
    if len(pts) < 2:
        raise ConfigError("a reference curve needs at least two (length, seconds) points")
    logs = [(math.log(x), math.log(y)) for x, y in pts]

    def f(length: float) -> float:
        x = math.log(max(length, 1))
        i = 0
        while i < len(logs) - 2 and x > logs[i + 1][0]:
            i += 1
        (x0, y0), (x1, y1) = logs[i], logs[i + 1]
        return math.exp(y0 + (y1 - y0) / (x1 - x0) * (x - x0))
    return f


def _profile_file(profile: str, name: str):
    path = files("eksfold.profiles") / profile / name
    if not path.is_file():
        raise ConfigError(f"profile {profile!r} has no {name} (profiles live in "
                          "lib/eksfold/profiles/<name>/)")
    return path


MEASURED_ALIGN = "cpu-2core"    # the profile whose align.json holds the measured MMseqs2 speedup


def measured_mmseqs_speedup(sensitivity: float | None = None, profile: str = MEASURED_ALIGN):
    """(speedup of MMseqs2 over jackhmmer at UniRef90's size, sensitivity, source) from the
    align benchmark (``profiles/<profile>/align.json``). At the benchmark's chosen sensitivity
    (-s 5.7) the conservative stage-split extrapolation; at another one the all-points fit."""
    import json

    doc = json.loads(_profile_file(profile, "align.json").read_text())
    s = float(sensitivity if sensitivity is not None else doc["chosen_sensitivity"])
    key = f"mmseqs2 -s {s:g}"
    if s == float(doc["chosen_sensitivity"]) and "speedup_at_uniref90_stages" in doc:
        x = float(doc["speedup_at_uniref90_stages"]["conservative"])
        how = "speedup_at_uniref90_stages.conservative (stage-split extrapolation)"
    elif key in doc.get("speedup_at_uniref90", {}):
        x, how = float(doc["speedup_at_uniref90"][key]), f"speedup_at_uniref90[{key!r}]"
    else:
        raise ConfigError(f"profiles/{profile}/align.json has no MMseqs2 speedup for -s {s:g} "
                          f"(measured: {', '.join(doc.get('speedup_at_uniref90', {}))})")
    return x, s, (f"MMseqs2 -s {s:g} = jackhmmer / {x:g}: measured on this project's 2-core "
                  f"machine, extrapolated to UniRef90's size (profiles/{profile}/align.json, "
                  f"{how}); ColabFold's stated 40-60x is not used")


def align_curve(msa_mode: str, profile: str = REFERENCE, sensitivity: float | None = None):
    """Seconds per query on one alignment Pod: the profile's jackhmmer planning figure
    (``align.yaml``), divided for MMseqs2 by the speedup this project measured."""
    if msa_mode not in MSA_MODES:
        raise ConfigError(f"MSA mode {msa_mode!r}: choose one of {', '.join(MSA_MODES)}")
    spec = yaml.safe_load(_profile_file(profile, "align.yaml").read_text())
    jh = spec["jackhmmer"]
    speedup, source = 1.0, jh["source"]
    if msa_mode == "mmseqs2":
        speedup, _, measured = measured_mmseqs_speedup(sensitivity)
        source += "; " + measured
    base, const = float(jh["seconds_at_300"]), float(jh["constant_fraction"])

    def f(length: float) -> float:
        return base * (const + (1 - const) * length / 300.0) / speedup
    return f, f"align ({msa_mode}, {spec['pod_vcpu']} vCPU Pod): {source}"


def relax_curve(profile: str = "cpu-2core"):
    """Amber relaxation seconds vs length, from the measured ``relax.csv`` of ``profile``."""
    rows = list(csv.DictReader(_profile_file(profile, "relax.csv").open()))
    pts = [(float(r["length"]), float(r["relax_s"])) for r in rows
           if not r.get("error") and r.get("relax_s")]
    return loglog_curve(_mean_by_length(pts)), f"relax: measured, profiles/{profile}/relax.csv"


def score_curve():
    """The optional score stage's seconds vs length: its stage class's own estimate (TM-score
    search and lDDT on C-alpha atoms on one CPU; no benchmark measures it separately)."""
    from ..stages import get_stage

    cls = get_stage("score")
    return (cls.__new__(cls).predicted_seconds,
            "score: the score stage's predicted_seconds (stated estimate, CPU, not measured)")


def _mean_by_length(pts):
    by: dict[float, list[float]] = {}
    for x, y in pts:
        by.setdefault(x, []).append(y)
    return [(x, sum(v) / len(v)) for x, v in by.items()]


def reference_costs(msa_mode: str = "jackhmmer", profile: str = REFERENCE,
                    fixed: FixedCosts | None = None) -> Costs:
    """Literature figures for a cluster (see ``profiles/<profile>/README.md``)."""
    rows = list(csv.DictReader(_profile_file(profile, "infer.csv").open()))
    devices = {r["device"] for r in rows}
    if len(devices) != 1:
        raise ConfigError(f"profile {profile}: infer.csv mixes devices {sorted(devices)}")
    device = devices.pop()
    infer = loglog_curve([(float(r["length"]), float(r["inference_s"])) for r in rows])
    align, align_src = align_curve(msa_mode, profile)
    relax, relax_src = relax_curve()
    score, score_src = score_curve()
    sources = [f"infer: {device} times of profiles/{profile}/infer.csv (literature, not "
               "measured), scaled to each pool's GPU by memory bandwidth and FP32 throughput",
               align_src, relax_src, score_src]
    return Costs({"align": align, "infer": infer, "relax": relax, "score": score},
                 fixed or FixedCosts(), sources, msa_mode, reference_gpu=device)


def gpu_profile_costs(profile: str, msa_mode: str = "jackhmmer", preset: str = "demo",
                      fixed: FixedCosts | None = None) -> Costs:
    """Inference from a MEASURED GPU profile (``settings.csv`` with CUDA rows, written by
    ``eksfold bench settings`` / ``tools/gpu_check.sh``): time per length with the setting the
    chooser picks for the pool's GPU memory, scaled to other GPU types by :func:`gpu_speed`,
    and GPU class routing by its memory model. MSA and relax figures as in
    :func:`reference_costs`."""
    import pandas as pd

    from ..memory.chooser import choose
    from ..memory.costmodel import CostModel
    from .cluster import price_table

    suffix = "" if preset == "demo" else f"-{preset}"
    table = pd.read_csv(str(_profile_file(profile, f"settings{suffix}.csv")))
    if not (table.get("device") == "cuda").any():
        raise ConfigError(f"profile {profile!r}: settings{suffix}.csv has no CUDA measurement")
    model = CostModel.fit(table, device="cuda")
    name = str(table.loc[table["device"] == "cuda", "device_name"].iloc[0])
    gpu = next((g for g in price_table()["gpus"] if g in name), None)
    if gpu is None:
        raise ConfigError(f"profile {profile!r}: GPU {name!r} is not in the price table")
    budget = price_table()["gpus"][gpu]["memory_gb"] * 1024

    def infer(length: float) -> float:
        return model.predict_time(int(length), choose(int(length), budget, model).setting)
    base = reference_costs(msa_mode, fixed=fixed)
    costs = Costs({**base.curves, "infer": infer}, base.fixed,
                  [f"infer: measured on {name}, profiles/{profile}/settings{suffix}.csv "
                   f"(preset {preset}), scaled to other GPUs by bandwidth and FP32 throughput"]
                  + base.sources[1:], msa_mode, reference_gpu=gpu)
    costs.memory_model = model
    return costs


def with_backend_infer(costs: Costs, preset: str | None, local: bool) -> Costs:
    """``costs`` with inference priced by ``preset``'s back end where its costs grow with
    tokens (OpenFold3; the length is then a token count): this machine's CPU curve for the
    local executor, its GPU curve (``gpu_seconds``, on its ``gpu_reference``) for a cluster.
    Other presets keep the profile's curves (the AlphaFold2-architecture figures)."""
    if preset is None:
        return costs
    from ..models import get_backend

    backend = get_backend(preset)
    if backend.memory_grows_with != "tokens":
        return costs
    if local:
        costs.curves["infer"] = backend.predicted_seconds
        costs.sources.append(f"infer: preset {preset}'s per-token CPU curve "
                             f"({type(backend).__name__}.predicted_seconds)")
    elif hasattr(backend, "gpu_seconds"):
        costs.curves["infer"] = backend.gpu_seconds
        costs.reference_gpu = backend.gpu_reference
        costs.sources.append(f"infer: preset {preset}'s per-token GPU curve on "
                             f"{backend.gpu_reference} ({type(backend).__name__}.gpu_seconds), "
                             "scaled to each pool's GPU")
    return costs


def stage_costs(msa_mode: str = "jackhmmer") -> Costs:
    """The stage classes' own predictions (``predicted_seconds``, ``fixed_cost_s``)."""
    from ..stages import get_stage

    curves, open_s = {}, {}
    for name in ("align", "infer", "relax", "score"):
        cls = get_stage(name)
        stage = cls.__new__(cls)          # predicted_seconds reads no run state
        stage.run = stage.config = SimpleNamespace()
        curves[name], open_s[name] = stage.predicted_seconds, cls.fixed_cost_s
    fixed = FixedCosts(worker_open_s=open_s, unit_overhead_s={})
    return Costs(curves, fixed, ["the stage classes' predicted_seconds / fixed_cost_s"], msa_mode)


def local_costs(fits: dict, fixed: FixedCosts, source: str, msa_mode: str = "jackhmmer") -> Costs:
    """Costs from curves fitted to this machine's unit records (``fits``: stage -> Fit)."""
    curves = {stage: fit.predict for stage, fit in fits.items()}
    return Costs(curves, fixed, [source], msa_mode)
