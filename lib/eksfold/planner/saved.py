"""A plan kept with its run (``plan.json`` in the run root) and compared with what happened."""
from __future__ import annotations

from datetime import datetime

from ..errors import ConfigError
from .model import Plan

PLAN_FILE = "plan.json"


def save_plan(run_root: str, plan: Plan) -> str:
    """Write ``plan`` as ``ROOT/plan.json``; returns its URI."""
    from ..storage import open_store

    store = open_store(run_root)
    store.write_json(PLAN_FILE, plan.to_dict())
    return store.uri(PLAN_FILE)


def load_plan(run_root: str) -> Plan | None:
    """The plan saved with a run, or None."""
    from ..storage import open_store

    store = open_store(run_root)
    if not store.exists(PLAN_FILE):
        return None
    return Plan.from_dict(store.read_json(PLAN_FILE))


def _ts(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def planned_vs_actual(run_root: str, origin: float | None = None):
    """One row per planned unit: planned and actual start/end (seconds from the run's start)
    and duration. ``origin`` (a POSIX time) is the run's start; default: the earliest unit
    ``started`` minus the plan's first start, so both clocks share the first unit. Unit records
    carry 1 s timestamps, so actual starts and ends are whole seconds; durations use ``wall_s``.
    """
    import pandas as pd

    from ..run import Run

    plan = load_plan(run_root)
    if plan is None:
        raise ConfigError(f"run {run_root} has no {PLAN_FILE}: plan it with `eksfold plan "
                          "--save ROOT` (or planner.save_plan) before launching")
    run = Run.open(run_root)
    rows = []
    for u in plan.units:
        rec = run.record(u.stage, u.target)
        rows.append({"stage": u.stage, "target": u.target, "length": u.length,
                     "planned_start": u.start, "planned_end": u.end,
                     "planned_s": round(u.end - u.start, 2),
                     "started": _ts(rec.started) if rec else None,
                     "finished": _ts(rec.finished) if rec else None,
                     "actual_s": rec.wall_s if rec else None,
                     "status": rec.status if rec else "missing"})
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    if origin is None:
        first = df.loc[df["started"].notna()]
        origin = (first["started"].min() - df["planned_start"].min()) if len(first) else 0.0
    df["actual_start"] = df["started"] - origin
    df["actual_end"] = df["finished"] - origin
    df["error_s"] = df["actual_s"] - df["planned_s"]
    return df.drop(columns=["started", "finished"])


def makespan_comparison(run_root: str, origin: float | None = None) -> dict:
    """Planned vs actual makespan of a finished run (from :func:`planned_vs_actual`)."""
    df = planned_vs_actual(run_root, origin)
    plan = load_plan(run_root)
    actual = float(df["actual_end"].max()) if df["actual_end"].notna().any() else None
    return {"planned_s": plan.makespan_s, "actual_s": actual,
            "error": None if not actual else round(plan.makespan_s / actual - 1, 4),
            "units_done": int((df["status"] == "ok").sum()), "units": len(df)}
