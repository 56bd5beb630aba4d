"""The result of planning: a :class:`Plan` with its schedule, makespan, cost and critical path.

A plan is plain data (JSON round trip: :meth:`Plan.to_dict` / :meth:`Plan.from_dict`), so a run
can keep the plan it was launched with (``plan.json`` in its root) and the report can put it
beside what happened.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class UnitSlot:
    """One work unit in the schedule (seconds from the start of the run)."""

    stage: str
    target: str
    length: int
    start: float
    end: float
    pool: str
    worker: str            # the Pod (cluster) or warm worker (local) that ran it


@dataclass
class WorkerSlot:
    """One Pod / warm worker: when it was submitted, started, ready, and done."""

    name: str
    stage: str
    pool: str
    node: str
    submitted: float
    start: float           # running on a node (after node start and image pull)
    ready: float           # after Pod start and the worker's model/tool load
    end: float
    targets: list
    waited_for: str = ""   # "node <name>", "slot after <worker>", "" (started at once)


@dataclass
class NodeSlot:
    name: str
    pool: str
    instance: str
    launched: float
    ready: float
    released: float
    hourly: float

    @property
    def cost(self) -> float:
        return (self.released - self.launched) / 3600.0 * self.hourly


@dataclass
class Plan:
    """A predicted run. Costs in USD, times in seconds."""

    targets: int
    makespan_s: float
    cost_by_stage: dict
    stage_span_s: dict                      # stage -> (first start, last end)
    critical_path: list                     # [{"what", "stage", "start", "end"}, ...]
    units: list = field(default_factory=list)
    workers: list = field(default_factory=list)
    nodes: list = field(default_factory=list)
    cluster: str = ""
    node_counts: dict = field(default_factory=dict)   # pool -> max nodes used
    settings: dict = field(default_factory=dict)      # msa_mode, spot, profile, executor options
    sources: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    cost_fallback: float | None = None      # the same schedule with spot fallen back to on-demand
    spot_rework: float = 0.0                # expected USD redone after spot reclaims (in cost)
    bounds: dict = field(default_factory=dict)   # the schedule's lower bounds: name -> seconds
    levers: dict = field(default_factory=dict)   # cost levers and their assumptions

    @property
    def cost(self) -> float:
        return round(sum(self.cost_by_stage.values()), 4)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["cost"] = self.cost
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Plan":
        d = {k: v for k, v in d.items() if k != "cost"}
        d["units"] = [UnitSlot(**u) for u in d.get("units", [])]
        d["workers"] = [WorkerSlot(**w) for w in d.get("workers", [])]
        d["nodes"] = [NodeSlot(**n) for n in d.get("nodes", [])]
        return cls(**d)

    def units_frame(self):
        import pandas as pd

        return pd.DataFrame([asdict(u) for u in self.units])

    def critical_stage(self) -> str:
        """The stage that holds most of the critical path's time."""
        share: dict[str, float] = {}
        for seg in self.critical_path:
            share[seg["stage"]] = share.get(seg["stage"], 0.0) + seg["end"] - seg["start"]
        return max(share, key=share.get) if share else ""

    def summary(self) -> str:
        lines = [f"plan: {self.targets} targets on {self.cluster}: makespan "
                 f"{fmt_duration(self.makespan_s)}, cost ${self.cost:,.2f}"]
        for stage, (a, b) in self.stage_span_s.items():
            lines.append(f"  {stage:8s} {fmt_duration(a)} -> {fmt_duration(b)}   "
                         f"${self.cost_by_stage.get(stage, 0):,.2f}")
        for k, v in self.cost_by_stage.items():
            if k not in self.stage_span_s:
                lines.append(f"  {k:8s} ${v:,.2f}")
        if self.node_counts:
            lines.append("  nodes used: " + ", ".join(f"{p} {n}" for p, n in self.node_counts.items()))
        if self.bounds:
            parts = {k: v for k, v in self.bounds.items() if k != "lower bound"}
            lines.append(f"  lower bound {fmt_duration(self.bounds['lower bound'])} (makespan "
                         f"{self.makespan_s / max(self.bounds['lower bound'], 1e-9):.2f}x it): "
                         + "; ".join(f"{k} {fmt_duration(v)}" for k, v in parts.items()))
        if self.levers:
            lv = self.levers
            lines.append(f"  $/structure: ${lv['per_structure']:.4f}, dominated by "
                         f"{lv['dominated_by']}")
            for name, why in lv.get("pools", {}).items():
                lines.append(f"    pool {name}: {why}")
            for key in ("spot", "msa_cache", "mmseqs_index"):
                if key in lv:
                    lines.append(f"    {key.replace('_', ' ')}: {lv[key]}")
        lines.append(f"  critical path ({self.critical_stage()}-bound):")
        for seg in self.critical_path:
            lines.append(f"    {fmt_duration(seg['start']):>9s} -> {fmt_duration(seg['end']):>9s}  "
                         f"{seg['what']}")
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  source: {s}" for s in self.sources]
        return "\n".join(lines)


def fmt_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def parse_duration(text) -> float:
    """Seconds from ``"45m"``, ``"8h"``, ``"1h30m"``, ``"90s"``, ``"2d"`` or a number."""
    from ..errors import ConfigError

    if isinstance(text, (int, float)):
        return float(text)
    import re

    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([dhms]?)", str(text).strip().lower())
    if not parts or "".join(a + b for a, b in parts) != re.sub(r"\s+", "", str(text).lower()):
        raise ConfigError(f"duration {text!r}: expected e.g. 45m, 8h, 1h30m, 90s or 2d")
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1, "": 1}
    return sum(float(a) * units[b] for a, b in parts)
