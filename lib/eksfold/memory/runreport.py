"""What a finished run did with memory, from its records: kills, settings, per-unit peaks, and
what the warm inference worker kept after each fold.

Everything here is read from the run root (unit records, kill records, the driver's worker
logs are not needed), so it works on any run, local or ``s3://``:

- **kills**: every out-of-memory or unknown kill the executors recorded (``attempts`` entries
  of the unit records with a kill, plus kill records of units still open);
- **settings**: how many units each inference setting folded, and how many were chosen beyond
  the settings sweep's longest length (``choice.beyond_sweep``);
- **retained**: per unit, the worker's resident memory after the unit (freed memory given
  back) minus its resident memory after loading the model (``worker_baseline_mb``): what a
  warm worker keeps after a fold of that length.

    eksfold bench warm --from-run runs/cameo92 --longest 10 --fresh
"""
from __future__ import annotations

from ..records import OK


def infer_rows(run, stage: str = "infer") -> list[dict]:
    """One row per target with the unit's memory figures (``status`` "ok" or the error)."""
    rows = []
    for target in run.targets:
        rec = run.record(stage, target.id)
        if rec is None:
            continue
        m, choice = rec.metrics, rec.metrics.get("choice") or {}
        attempts = m.get("attempts") or rec.attempts or []
        baseline = m.get("worker_baseline_mb", choice.get("baseline_mb"))
        rows.append({
            "target": target.id, "length": target.length, "status": rec.status,
            "error": rec.error if rec.status != OK else None,
            "setting": m.get("setting"), "chosen_by": m.get("chosen_by"),
            "predicted_mb": choice.get("predicted_mb"), "budget_mb": choice.get("budget_mb"),
            "margin": choice.get("margin"), "beyond_sweep": choice.get("beyond_sweep"),
            "peak_rss_mb": rec.peak_rss_mb, "peak_rss_scope": rec.peak_rss_scope,
            "rss_start_mb": rec.rss_start_mb, "rss_end_mb": rec.rss_end_mb,
            "baseline_mb": baseline,
            "retained_mb": (round(rec.rss_end_mb - baseline, 1)
                            if rec.rss_end_mb is not None and baseline is not None else None),
            "wall_s": rec.wall_s, "inference_s": m.get("inference_s"),
            "templates_used": m.get("templates_used"),
            "tries": len(attempts),
            "oom_kills": sum(1 for a in attempts if _cause(a) == "oom"),
            "other_kills": sum(1 for a in attempts if _cause(a) == "unknown"),
        })
    return rows


def _cause(attempt: dict) -> str | None:
    """"oom"/"unknown" for a killed attempt, None for a finished or failed-in-process one."""
    cause = attempt.get("killed")   # stages.infer.Attempts.as_record
    return cause if cause in ("oom", "unknown") else None


def open_kills(run, stage: str = "infer") -> list[dict]:
    """Kill records of units not (yet) committed: a killed unit the run never finished."""
    from .kills import read_kills

    out = []
    for target in run.targets:
        rec = run.record(stage, target.id)
        if rec is not None and rec.done:
            continue
        out += [{"target": target.id, **k} for k in read_kills(run.store, stage, target.id)]
    return out


def summarise(run, stage: str = "infer") -> dict:
    """The run's memory figures as a dict of tables (pandas) and totals."""
    import pandas as pd

    df = pd.DataFrame(infer_rows(run, stage))
    pending = open_kills(run, stage)
    done = df[df["status"] == OK] if len(df) else df
    out = {"units": df, "open_kills": pending,
           "folded": int(len(done)), "targets": len(run.targets),
           "failed": int((df["status"] != OK).sum()) if len(df) else 0,
           "oom_kills": int(df["oom_kills"].sum() if len(df) else 0)
           + sum(1 for k in pending if k.get("cause") == "oom"),
           "other_kills": int(df["other_kills"].sum() if len(df) else 0)
           + sum(1 for k in pending if k.get("cause") != "oom")}
    if len(done):
        out["settings"] = (done.groupby("setting")
                           .agg(units=("target", "size"), min_length=("length", "min"),
                                max_length=("length", "max"),
                                beyond_sweep=("beyond_sweep", lambda s: int((s > 0).sum())),
                                max_peak_mb=("peak_rss_mb", "max"))
                           .reset_index())
        bins = [0, 150, 300, 450, 600, 750, 10_000]
        by_len = done.assign(length_bin=pd.cut(done["length"], bins))
        out["retained"] = (by_len.groupby("length_bin", observed=True)
                           .agg(units=("target", "size"),
                                peak_mb_max=("peak_rss_mb", "max"),
                                retained_mb_median=("retained_mb", "median"),
                                retained_mb_max=("retained_mb", "max"))
                           .reset_index())
    return out


def describe(summary: dict) -> str:
    lines = [f"folded {summary['folded']}/{summary['targets']}, failed {summary['failed']}; "
             f"out-of-memory kills {summary['oom_kills']}, other kills {summary['other_kills']}"]
    for name in ("settings", "retained"):
        if name in summary:
            lines += [f"\n{name}:", summary[name].to_string(index=False)]
    killed = summary["units"]
    killed = killed[(killed["oom_kills"] + killed["other_kills"]) > 0] if len(killed) else killed
    if len(killed):
        lines += ["\nunits with kills:",
                  killed[["target", "length", "setting", "tries", "oom_kills", "other_kills",
                          "status"]].to_string(index=False)]
    for k in summary["open_kills"]:
        lines.append(f"open kill: {k['target']}: {k.get('cause')} {k.get('evidence', '')[:120]}")
    return "\n".join(lines)
