"""Automatic inference settings: memory budgets, the choice per length, refusals, GPU classes.

The chooser never measures anything: it reads a :class:`~eksfold.memory.costmodel.CostModel`
and a budget in MB. ``choose`` keeps the settings whose predicted peak, plus ``margin``, fits
and takes the fastest of them by predicted time; ties within ``TIE`` go to the earlier (less
chunked) rung of the ladder, so timing noise cannot pick a slower-by-design setting.

Past the longest length the sweep measured, a prediction is an extrapolation: the margin grows
by ``BEYOND_MARGIN`` per sweep length beyond it (a tiny-preset fit to 256 residues predicted
9.7 GB at 883 where 15.1 GB was measured), and each choice records how far out it was.

A warm worker is not a fresh process: the sweep's peaks are whole fresh-process peaks
(baseline + growth), while a worker that has folded before holds more than its baseline
(caches, memory the allocator kept). :func:`memory_budget` is therefore read before every
unit, and the memory the worker holds above its baseline is taken off what the prediction may
use (:meth:`Budget.for_prediction`, :func:`choose_in_worker`): the predicted *growth* must
fit what is free for this worker now.
"""
from __future__ import annotations

import os
import resource
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import TargetError
from .usage import rss_mb

TIE = 0.10
BEYOND_MARGIN = 0.25   # extra margin per sweep length past the longest measured one
# GPU memory of the Kubernetes GPU size classes (eksfold.io/gpu-class), MB
GPU_CLASSES = {"standard": 24 * 1024, "large": 80 * 1024}


@dataclass(frozen=True)
class Budget:
    """The peak this process may reach now (its own resident memory counted in), and what set it."""

    mb: float
    source: str   # what limited it: "cgroup", "rlimit", "MemAvailable", "cuda:0 free", "given"
    resident_mb: float = 0.0   # this process's resident memory when read (0: not a worker's)

    @property
    def free_mb(self) -> float:
        """What this process can still grow by: its limit minus its resident memory."""
        return self.mb - self.resident_mb

    def for_child(self, child_rss_mb: float) -> "Budget":
        """The budget of a child process that folds for this one (OpenFold3's runner), whose
        peak the cost model predicts: this process's own memory is no longer free for it,
        the child's is."""
        return Budget(self.mb - self.resident_mb + child_rss_mb, self.source, child_rss_mb)

    def for_prediction(self, baseline_mb: float | None) -> float:
        """The budget a fresh-process prediction (baseline + growth) is held against in a
        worker whose resident memory was ``baseline_mb`` after loading: what it holds above
        that baseline is not free for the next fold's growth."""
        if baseline_mb is None:
            return self.mb
        return self.mb - max(0.0, self.resident_mb - baseline_mb)


@dataclass(frozen=True)
class Choice:
    """The chosen setting for one length, with what the model predicted (for unit records)."""

    setting: str
    length: int
    predicted_mb: float
    predicted_s: float | None
    budget_mb: float
    margin: float
    fits: bool
    sweep_max_length: int | None = None   # longest length the setting's sweep measured
    beyond_sweep: float = 0.0             # length / sweep_max_length - 1 when past it, else 0

    def as_dict(self) -> dict:
        return {k: (round(v, 1) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return None if text in ("max", "") else int(text)


def _cgroup_limit_mb() -> float | None:
    """Room left under this process's memory cgroup (v2 or v1), counting itself as free."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    own = rss_mb()
    for line in lines:
        _, controllers, rel = line.split(":", 2)
        if controllers == "":  # v2 unified
            base = Path("/sys/fs/cgroup") / rel.lstrip("/")
            limit, usage = _read_int(base / "memory.max"), _read_int(base / "memory.current")
        elif "memory" in controllers.split(","):
            base = Path("/sys/fs/cgroup/memory") / rel.lstrip("/")
            if not base.exists():
                base = Path("/sys/fs/cgroup/memory")
            limit = _read_int(base / "memory.limit_in_bytes")
            usage = _read_int(base / "memory.usage_in_bytes")
        else:
            continue
        if limit and limit < 1 << 60:  # v1 reports "no limit" as a huge number
            return (limit - (usage or 0)) / 2**20 + own
    return None


def memory_budget(device: str = "cpu") -> Budget:
    """What the next fold may use, in MB: the tightest of the limits that apply here.

    On CUDA: the device's free memory plus what this process has cached but not allocated.
    On CPU: the cgroup limit (a Pod's), ``RLIMIT_DATA``/``RLIMIT_AS``, and ``MemAvailable``,
    each counting this process's own resident memory as usable (the sweep's peaks are whole
    process peaks).
    """
    if str(device).startswith("cuda"):
        import torch

        dev = torch.device(device)
        free, _ = torch.cuda.mem_get_info(dev)
        cached = torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev)
        return Budget((free + cached) / 2**20, f"{dev} free")
    own = rss_mb()
    found = []
    cg = _cgroup_limit_mb()
    if cg is not None:
        found.append(Budget(cg, "cgroup"))
    for name in ("RLIMIT_DATA", "RLIMIT_AS"):
        soft, _ = resource.getrlimit(getattr(resource, name))
        if soft != resource.RLIM_INFINITY:
            found.append(Budget(soft / 2**20, "rlimit"))
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            found.append(Budget(int(line.split()[1]) / 1024 + own, "MemAvailable"))
    best = min(found, key=lambda b: b.mb)
    return Budget(best.mb, best.source, own)


def beyond_sweep(model, length: int, setting: str) -> tuple[int | None, float]:
    """(longest measured length of ``setting``'s memory sweep, how far ``length`` is past it
    as a fraction of it; 0 inside the measured range)."""
    measured = model.measured_lengths(setting)
    if not measured:
        return None, 0.0
    top = int(max(measured))
    return top, max(0.0, length / top - 1)


def choose(length: int, budget_mb: float, model, margin: float = 0.15,
           settings=None, templates: int = 0) -> Choice:
    """The fastest setting predicted to fit ``budget_mb`` with its margin at ``length``
    (``templates``: template structures the fold uses; their measured term is added).

    The margin is ``margin`` inside the sweep's measured lengths and grows by
    ``BEYOND_MARGIN`` per sweep length beyond the longest one. When none fits, the most
    frugal setting comes back with ``fits=False`` (see :func:`refuse_unfit`). ``settings``
    limits the candidates (default: all fitted ones).
    """
    names = [s for s in model.settings if settings is None or s in settings]
    if not names:
        raise ValueError("no candidate settings in the cost model")

    def candidate(name):
        top, beyond = beyond_sweep(model, length, name)
        mem = model.predict(length, name, templates=templates)
        m = margin + BEYOND_MARGIN * beyond
        return Choice(name, length, mem, _time_or_none(model, length, name, templates),
                      budget_mb, m,
                      mem * (1 + m) <= budget_mb, top, round(beyond, 3))

    cands = [candidate(n) for n in names]
    fitting = [c for c in cands if c.fits]
    if not fitting:
        return cands[-1]
    best = fitting[0]
    if all(_time_trusted(model, c.setting) for c in fitting):
        for cand in fitting[1:]:
            if (cand.predicted_s is not None and best.predicted_s is not None
                    and cand.predicted_s < best.predicted_s * (1 - TIE)):
                best = cand
    # else: the ladder's order (fastest first by design) decides: measured times too noisy
    return best


def choose_in_worker(length: int, budget: Budget, baseline_mb: float | None, model,
                     margin: float = 0.15, settings=None, granted_mb: float | None = None,
                     templates: int = 0) -> dict:
    """:func:`choose` for a warm worker: the budget read now, less what the worker holds above
    ``baseline_mb`` (its resident memory after loading); the record says all three figures.
    ``granted_mb``: the executor's grant beside other running units
    (:mod:`eksfold.memory.admission`), when smaller."""
    mb, source = budget.for_prediction(baseline_mb), budget.source
    if granted_mb is not None and granted_mb < mb:
        mb, source = granted_mb, "admission"
    choice = choose(length, mb, model, margin, settings, templates)
    return {**choice.as_dict(), "budget_source": source, "templates": templates,
            "limit_mb": round(budget.mb, 1), "resident_mb": round(budget.resident_mb, 1),
            "baseline_mb": None if baseline_mb is None else round(baseline_mb, 1),
            "free_mb": round(budget.free_mb, 1)}


TIME_TRUST = 0.25   # a setting's time model steers the choice only within this LOO error


def _time_trusted(model, name) -> bool:
    """Whether the time model of ``name`` predicted every left-out *interior* length within
    TIME_TRUST. A sweep on a loaded machine measures the neighbours, not the setting, and
    then misses interior points too; the two end lengths are extrapolations (a quiet demo
    sweep on this CPU: 1-20 % inside, 29 % at its ends), reported with the fit but not
    held against the model's ordering of settings."""
    fit = model.fits.get((name, "inference_s"))
    if fit is None or not fit.loo:
        return False
    lengths = sorted({e[0] for e in fit.loo})
    inner = [abs(e[3]) for e in fit.loo if lengths[0] < e[0] < lengths[-1]]
    return bool(inner) and max(inner) <= TIME_TRUST


def _time_or_none(model, length, name, templates: int = 0):
    try:
        return model.predict_time(length, name, templates=templates)
    except Exception:  # a table without times still chooses by ladder order
        return None


def crossovers(model, budget_mb: float, lengths, margin: float = 0.15) -> list[tuple[int, str]]:
    """(first length, setting) wherever the automatic choice changes over ``lengths``."""
    out, last = [], None
    for L in lengths:
        c = choose(int(L), budget_mb, model, margin)
        name = c.setting if c.fits else "refused"
        if name != last:
            out.append((int(L), name))
            last = name
    return out


def refuse_unfit(targets, budget_mb: float, model, margin: float = 0.15):
    """Split ``targets`` into (those that fit, TargetErrors for the rest) before any work.

    A target is refused when even the most frugal setting is predicted not to fit the budget
    (the largest device's, for a cluster); the error names its length and both figures.
    """
    fit, errors = [], []
    unit = _unit(model)
    for t in targets:
        c = choose(t.length, budget_mb, model, margin)
        if c.fits:
            fit.append(t)
        else:
            errors.append(TargetError(t.id, (
                f"{t.length} {unit}: predicted {c.predicted_mb:,.0f} MB with the most frugal "
                f"setting {c.setting!r}, {budget_mb:,.0f} MB available "
                f"(with a {c.margin:.0%} safety margin)")))
    return fit, errors


def _unit(model) -> str:
    """What the cost model's lengths count: "residues", or "tokens" for a family whose
    costs grow with tokens (OpenFold3: residues, nucleotides and ligand heavy atoms)."""
    from ..models import get_backend

    preset = getattr(model, "preset", None)
    try:
        return get_backend(preset if isinstance(preset, str) else None).memory_grows_with
    except Exception:  # noqa: BLE001 - a table from a preset no longer registered
        return "residues"


def gpu_class_for(length: int, model, classes: dict | None = None, margin: float = 0.15,
                  host_metric: str = "peak_rss_mb") -> dict:
    """The smallest GPU class whose memory fits ``length`` with some setting, from ``model``.

    ``model`` must be a CUDA cost model (a GPU profile). Returns the class, the setting the
    worker should start with there, and the Pod memory request (predicted host peak + margin).
    Raises TargetError when no class fits.
    """
    classes = classes or GPU_CLASSES
    if model.device != "cuda":
        raise ValueError("gpu_class_for needs a CUDA cost model (a GPU settings profile)")
    for name, mb in sorted(classes.items(), key=lambda kv: kv[1]):
        c = choose(length, mb, model, margin)
        if c.fits:
            host = model.predict(length, c.setting, host_metric)
            return {"gpu_class": name, "setting": c.setting, "predicted_gpu_mb": round(c.predicted_mb),
                    "memory_request_mb": int(host * (1 + margin)) + 1, "choice": c.as_dict()}
    biggest = max(classes.values())
    c = choose(length, biggest, model, margin)
    raise TargetError(f"L={length}", f"{length} {_unit(model)}: predicted {c.predicted_mb:,.0f} MB with "
                      f"{c.setting!r}, largest GPU class has {biggest:,.0f} MB")


def default_model(device: str = "cpu", preset: str = "demo"):
    """The committed cost model for this kind of device (profile from $EKSFOLD_PROFILE)."""
    from .costmodel import PROFILES, CostModel

    name = os.environ.get("EKSFOLD_PROFILE")
    if not name:
        kind = "gpu-" if str(device).startswith("cuda") else "cpu-"
        found = sorted(p.name for p in PROFILES.glob(kind + "*") if p.is_dir())
        name = found[0] if found else "cpu-2core"
    return CostModel.from_profile(name, preset)


def usable_model(device_type: str, preset: str):
    """The committed cost model for this device and preset, or (None, why not)."""
    from ..errors import EksfoldError

    try:
        model = default_model(device_type, preset.split("+")[0])
    except (OSError, ValueError, EksfoldError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if not model.settings:
        return None, f"no setting fitted in the {device_type} profile for preset {preset}"
    return model, None
