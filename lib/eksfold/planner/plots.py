"""Plots of plans: a Gantt chart of the schedule, and cost/time vs cluster size.

Each returns a :class:`matplotlib.figure.Figure` (not pyplot; see :mod:`eksfold.plots`).

>>> from eksfold import planner
>>> from eksfold.planner import plots
>>> p = planner.plan("data/cameo92/targets.fasta", msa_mode="mmseqs2")    # doctest: +SKIP
>>> plots.gantt(p)                                                       # doctest: +SKIP
"""
from __future__ import annotations

from matplotlib.patches import Patch

from ..plots import _figure
from .model import Plan

STAGE_COLORS = {"align": "#4C72B0", "infer": "#DD8452", "relax": "#55A868"}


def gantt(plan: Plan, max_rows: int = 60, title: str | None = None):
    """One row per Pod / warm worker: its start-up (grey), then each target as a bar."""
    fig, (ax,) = _figure(1, size=(10.0, 5.0))
    workers = sorted(plan.workers, key=lambda w: (w.stage != "align", w.start, w.name))
    if len(workers) > max_rows:   # keep the chart legible: the workers that end last
        workers = sorted(sorted(workers, key=lambda w: -w.end)[:max_rows],
                         key=lambda w: (w.stage != "align", w.start, w.name))
    row = {w.name: i for i, w in enumerate(workers)}
    scale, unit = (60.0, "min") if plan.makespan_s < 3 * 3600 else (3600.0, "h")
    for w in workers:
        y = row[w.name]
        ax.barh(y, (w.ready - w.start) / scale, left=w.start / scale, color="0.8", height=0.8)
        if w.submitted < w.start:
            ax.plot([w.submitted / scale, w.start / scale], [y, y], color="0.6", lw=0.8, ls=":")
    on_path = {seg["what"].split(" on ")[-1].split(" (")[0] for seg in plan.critical_path}
    for u in plan.units:
        if u.worker in row:
            ax.barh(row[u.worker], (u.end - u.start) / scale, left=u.start / scale,
                    color=STAGE_COLORS.get(u.stage, "0.5"), edgecolor="white", lw=0.3,
                    height=0.8)
    for name in on_path & set(row):
        ax.annotate("critical", (workers[row[name]].end / scale, row[name]), fontsize=7,
                    xytext=(3, -3), textcoords="offset points")
    ax.set_yticks(range(len(workers)), [w.name for w in workers], fontsize=6)
    ax.invert_yaxis()
    ax.set_xlabel(f"time from launch ({unit})")
    ax.axvline(plan.makespan_s / scale, color="k", lw=0.8)
    bound = (plan.bounds or {}).get("lower bound")
    if bound:
        ax.axvline(bound / scale, color="k", lw=0.8, ls="--")
    handles = [Patch(color=c, label=s) for s, c in STAGE_COLORS.items()
               if any(u.stage == s for u in plan.units)]
    handles.append(Patch(color="0.8", label="start-up: node, image, Pod, model load"))
    if bound:
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], color="k", lw=0.8, ls="--", label="lower bound"))
    ax.legend(handles=handles, loc="lower right", fontsize=7)
    ax.set_title(title or f"{plan.targets} targets: {plan.makespan_s / scale:.1f} {unit}, "
                 f"${plan.cost:,.2f} ({plan.settings.get('msa_mode', '')}"
                 f"{', spot' if plan.settings.get('spot') else ''})", fontsize=9)
    return fig


def size_tradeoff(points, pool: str, title: str | None = None):
    """Makespan and cost vs node count of ``pool`` from ``[(count, Plan), ...]``
    (:func:`eksfold.planner.search.sweep`)."""
    fig, (ax,) = _figure(1, size=(6.5, 4.0))
    counts = [n for n, _ in points]
    hours = [p.makespan_s / 3600 for _, p in points]
    ax.plot(counts, hours, "o-", color="#4C72B0", label="makespan")
    ax.set_xlabel(f"{pool} nodes (limit)")
    ax.set_ylabel("makespan (h)", color="#4C72B0")
    ax2 = ax.twinx()
    ax2.plot(counts, [p.cost for _, p in points], "s--", color="#C44E52", label="cost")
    ax2.set_ylabel("cost (USD)", color="#C44E52")
    ax.set_title(title or f"time and cost vs {pool} size", fontsize=9)
    return fig


def compare(plans: dict, title: str = "plans compared"):
    """Bars of makespan and cost per named plan (e.g. jackhmmer/MMseqs2 x on-demand/spot)."""
    fig, (a, b) = _figure(2, ncols=2, size=(4.5, 3.5))
    names = list(plans)
    a.bar(names, [plans[n].makespan_s / 60 for n in names], color="#4C72B0")
    a.set_ylabel("makespan (min)")
    b.bar(names, [plans[n].cost for n in names], color="#C44E52")
    b.set_ylabel("cost (USD)")
    for ax in (a, b):
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
    fig.suptitle(title, fontsize=9)
    return fig


def planned_vs_actual(df, title: str = "planned vs actual"):
    """Per unit: planned vs actual seconds (left) and end times (right), from
    :func:`eksfold.planner.planned_vs_actual`."""
    fig, (a, b) = _figure(2, ncols=2, size=(4.5, 4.0))
    for stage, rows in df.groupby("stage"):
        color = STAGE_COLORS.get(stage, "0.5")
        a.scatter(rows["planned_s"], rows["actual_s"], s=12, color=color, label=stage)
        b.scatter(rows["planned_end"], rows["actual_end"], s=12, color=color, label=stage)
    for ax, what in ((a, "unit seconds"), (b, "unit end (s from start)")):
        hi = max(float(df[[c for c in df.columns if c.startswith(("planned_", "actual_"))]]
                       .select_dtypes("number").max().max() or 1.0), 1.0)
        ax.plot([0, hi], [0, hi], color="k", lw=0.6)
        ax.set_xlabel(f"planned {what}")
        ax.set_ylabel(f"actual {what}")
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    return fig
