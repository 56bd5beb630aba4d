"""The zero-OOM check: automatic settings for every CAMEO-92 length under a stated budget.

Every target gets the automatic choice (or a refusal) from the cost model; the longest few
that fit the time are then folded for real, each in a child process inside a real memory
limit of the budget (a memory cgroup when ``/sys/fs/cgroup`` is writable -- the kernel kills
past it, as Kubernetes does -- else ``RLIMIT_DATA``). With ``control``, each is folded again
with the fastest setting, which should not fit: that shows the limit binds.

    eksfold bench settings --cameo-check --budget-mb 1000 --profile cpu-2core
"""
from __future__ import annotations

from collections import Counter

from .chooser import choose, refuse_unfit
from .limits import cgroup_available
from .retry import OOM_MESSAGES


def _is_oom_row(row: dict) -> bool:
    err = row.get("error") or ""
    return row.get("returncode") == -9 or any(m in err for m in OOM_MESSAGES) or "MemoryError" in err


def cameo_check(targets_fasta, model, budget_mb: float, preset: str = "demo",
                fold_count: int = 3, max_length: int = 160, weights: str = "random",
                margin: float = 0.15, control: bool = False) -> dict:
    """Choices for every target, real folds of the longest ``fold_count`` <= ``max_length``."""
    from .measure import run_point
    from ..target_files import read_fasta

    targets = read_fasta(targets_fasta)
    fit, refused = refuse_unfit(targets, budget_mb, model, margin)
    choices = {t.id: choose(t.length, budget_mb, model, margin) for t in fit}
    kind = "cgroup" if cgroup_available() else "rlimit"
    chosen = sorted((t for t in fit if t.length <= max_length), key=lambda t: -t.length)[:fold_count]
    folds = []
    for t in chosen:
        c = choices[t.id]
        row = run_point(t.length, c.setting, preset, "cpu", weights, limit_mb=budget_mb,
                        limit_kind=kind, sequence=t.sequence)
        folds.append({"target": t.id, "length": t.length, "setting": c.setting,
                      "predicted_mb": round(c.predicted_mb), "peak_rss_mb": row.get("peak_rss_mb"),
                      "cgroup_peak_mb": row.get("cgroup_peak_mb"), "inference_s": row.get("inference_s"),
                      "oom": _is_oom_row(row), "error": row.get("error")})
        if control and c.setting != model.settings[0]:
            ctl = run_point(t.length, model.settings[0], preset, "cpu", weights,
                            limit_mb=budget_mb, limit_kind=kind, sequence=t.sequence)
            folds.append({"target": t.id, "length": t.length, "setting": model.settings[0] + " (control)",
                          "predicted_mb": round(model.predict(t.length, model.settings[0])),
                          "peak_rss_mb": ctl.get("peak_rss_mb"), "inference_s": ctl.get("inference_s"),
                          "oom": _is_oom_row(ctl), "error": ctl.get("error"), "control": True})
    real = [f for f in folds if not f.get("control")]
    oom = sum(f["oom"] for f in real)
    failed = sum(bool(f["error"]) for f in real)
    hist = Counter(c.setting for c in choices.values())
    lines = [f"zero-OOM check: {len(targets)} targets of {targets_fasta}, preset {preset}, "
             f"budget {budget_mb:,.0f} MB ({kind} limit for the folds), margin {margin:.0%}",
             "automatic choice: " + ", ".join(f"{k} {v}" for k, v in hist.items())
             + f"; refused up front {len(refused)}"]
    lines += [f"  refused: {e}" for e in refused]
    for f in folds:
        lines.append(f"  fold {f['target']} L={f['length']} {f['setting']}: predicted "
                     f"{f['predicted_mb']} MB, peak RSS {f['peak_rss_mb']} MB, "
                     f"{f['inference_s']} s" + (f", OOM: {f['error']}" if f["oom"] else "")
                     + (f", error: {f['error']}" if f["error"] and not f["oom"] else ""))
    lines.append(f"out-of-memory failures with automatic settings: {oom} of {len(real)} folds "
                 f"({failed} failed in all); predicted to fit: {len(fit)} of {len(targets)}")
    return {"text": "\n".join(lines), "oom_failures": oom, "failed": failed, "folds": folds,
            "refused": [str(e) for e in refused], "choices": {k: v.as_dict() for k, v in choices.items()}}
