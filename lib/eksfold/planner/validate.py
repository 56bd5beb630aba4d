"""Validation against reality: predict a local run from this machine's own costs, then run it.

1. :func:`calibrate` runs a short calibration set through the real pipeline (local executor)
   and fits, from its unit records, per-stage seconds vs length
   (:func:`eksfold.memory.costmodel.fit_curve`) and the fixed costs (start-up until the first
   alignment, the inference worker's start and first-call warm-up, the gap between units, the
   shut-down after the last one), all on this machine under its present load.
2. :func:`validate_local` plans each validation set with those costs
   (:func:`eksfold.planner.plan`, ``local=True``), runs it with the same executor settings,
   and reports predicted vs measured makespan (the wall time of :func:`run_pipeline`).
"""
from __future__ import annotations

import os
import time
from datetime import datetime, timezone

from .costs import FixedCosts, local_costs


def _ts(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def _run(targets, root, preset, workers, databases=None, settings="default"):
    from ..pipeline import run_pipeline
    from ..progress.text import TextProgress

    load = os.getloadavg()[0]
    started = time.time()
    # one inference setting for every run: "auto" would choose from the committed settings
    # profile, which may change between the calibration and the validation runs
    run = run_pipeline(list(targets), root, preset=preset, relax=False, settings=settings,
                       executor_options={"align_workers": workers["align"],
                                         "infer_workers": workers["infer"]},
                       databases=databases, reporter=TextProgress(stream=open(os.devnull, "w")))
    return run, started, time.time(), load


def _records(run, stage):
    out = []
    for t in run.targets:
        rec = run.record(stage, t.id)
        if rec is None or not rec.done:
            raise RuntimeError(f"calibration: {stage} of {t.id} did not finish "
                               f"({rec.error if rec else 'no record'})")
        out.append((t, rec))
    return out


def calibrate(targets, root: str, preset: str = "tiny", workers=None, databases=None):
    """Run ``targets`` and fit local costs; returns (Costs, facts measured)."""
    from ..memory.costmodel import fit_curve

    workers = workers or {"align": 1, "infer": 1}
    run, t0, t1, load = _run(targets, root, preset, workers, databases)
    align, infer = _records(run, "align"), _records(run, "infer")
    first = min(infer, key=lambda tr: _ts(tr[1].started))
    rest = [tr for tr in infer if tr is not first] or infer
    fits = {"align": fit_curve("local", "align_wall_s", [t.length for t, _ in align],
                               [r.wall_s for _, r in align]),
            "infer": fit_curve("local", "infer_wall_s", [t.length for t, _ in rest],
                               [r.wall_s for _, r in rest])}
    align_done = {t.id: _ts(r.started) + r.wall_s for t, r in align}
    worker_start = _ts(first[1].started) - align_done[first[0].id]
    warmup = first[1].wall_s - fits["infer"].predict(first[0].length)

    def gaps(pairs):
        # next start - (this start + this wall): truncation errors of the two starts cancel
        seq = sorted(pairs, key=lambda tr: _ts(tr[1].started))
        g = [_ts(b.started) - _ts(a.started) - a.wall_s for (_, a), (_, b) in zip(seq, seq[1:])]
        # only back-to-back units: an inference that waited for its alignment is no gap
        g = [x for x in g if x <= 2.0]
        return max(0.0, sum(g) / len(g)) if g else 0.0

    gap_align, gap_infer = gaps(align), gaps(infer)
    fixed = FixedCosts(
        node_start_s=0.0, image_pull_s=0.0, pod_start_s=0.0,
        worker_open_s={"align": 0.0, "infer": max(0.0, worker_start + warmup)},
        unit_overhead_s={"align": gap_align, "infer": gap_infer},
        # record timestamps are truncated to the second: +0.5 s against a float clock
        startup_s=max(0.0, min(_ts(r.started) for _, r in align) + 0.5 - t0),
        sources={"all": f"measured on this machine by a calibration run of {len(align)} targets "
                         f"(preset {preset}, load average {load:.1f})"})
    shutdown = t1 - (max(_ts(r.started) + r.wall_s for _, r in infer) + 0.5)
    facts = {"calibration_targets": len(align), "lengths": [t.length for t, _ in align],
             "wall_s": round(t1 - t0, 2), "startup_s": round(fixed.startup_s, 2),
             "infer_worker_s": round(fixed.worker("infer"), 2), "shutdown_s": round(shutdown, 2),
             "align_fit": fits["align"].formula(), "infer_fit": fits["infer"].formula(),
             "infer_fit_form": fits["infer"].form, "load_average": round(load, 2)}
    costs = local_costs(fits, fixed, fixed.sources["all"])
    costs.shutdown_s = max(0.0, shutdown)
    return costs, facts


def pick_sets(targets, calibration: int = 4, small: int = 8, mixed: int = 6):
    """Disjoint calibration and validation sets from ``targets`` (by length).

    Calibration: two short ones from among the shortest (the first inference of a worker pays
    its warm-up; the other tells the warm-up from the length's own cost) and a spread of longer
    ones up to the longest. Set A: the ``small`` shortest of the others. Set B: a spread of
    lengths between.
    """
    ts = sorted(targets, key=lambda t: (t.length, t.id))
    cal = [ts[2], ts[5]] if len(ts) > 5 else ts[:2]     # short ones: set A is not extrapolated
    remaining = [t for t in ts if t not in cal]
    set_a, rest = remaining[:small], remaining[small:]
    want = max(calibration - 2, 0) + mixed
    step = max(1, len(rest) // max(want, 1))
    spread = rest[step // 2::step][:want]
    extra = max(calibration - 2, 0)
    # calibration reaches the longest length (no extrapolation), set B the lengths between
    idx = {len(spread) - 1 - k * (len(spread) // max(extra, 1)) for k in range(extra)}
    cal += [t for i, t in enumerate(spread) if i in idx]
    set_b = [t for i, t in enumerate(spread) if i not in idx][:mixed]
    return cal, {"A (shortest)": set_a, "B (length mix)": set_b}


def validate_local(source, root_base: str, preset: str = "tiny", limit: int | None = None,
                   calibration: int = 4, small: int = 8, mixed: int = 6, max_length: int = 450,
                   workers=None, databases=None, log=print):
    """Calibrate, then predict and run each validation set; returns a DataFrame of results."""
    import pandas as pd

    from . import plan as make_plan
    from .saved import planned_vs_actual, save_plan
    from ..pipeline import load_targets_for_run

    targets, _, _ = load_targets_for_run(source, limit=limit, max_length=max_length)
    workers = workers or {"align": 1, "infer": 1}
    cal, sets = pick_sets(targets, calibration, small, mixed)
    log(f"calibration: {len(cal)} targets, lengths {[t.length for t in cal]}")
    costs, facts = calibrate(cal, f"{root_base}/calibration", preset, workers, databases)
    log(f"calibration: {facts}")
    rows = []
    for name, chosen in sets.items():
        p = make_plan(chosen, local=True, costs=costs, workers=workers)
        predicted = p.makespan_s + costs.shutdown_s
        log(f"set {name}: {len(chosen)} targets {[t.length for t in chosen]}: predicted "
            f"{predicted:.1f} s; running ...")
        root = f"{root_base}/set-{name.split()[0]}"
        save_plan(root, p)             # the run keeps its plan: the report can compare
        _, t0, t1, load = _run(chosen, root, preset, workers, databases)
        measured = t1 - t0
        units = planned_vs_actual(root, origin=t0)
        rows.append({"set": name, "targets": len(chosen),
                     "lengths": ",".join(str(t.length) for t in chosen),
                     "predicted_s": round(predicted, 1), "measured_s": round(measured, 1),
                     "error": round(predicted / measured - 1, 4),
                     "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2),
                     "critical": p.critical_stage(), "root": root,
                     "infer_unit_error_median": round(float(
                         (units[units.stage == "infer"].actual_s
                          / units[units.stage == "infer"].planned_s - 1).median()), 3)})
        log(f"set {name}: measured {measured:.1f} s, error {100 * rows[-1]['error']:+.1f} %")
    df = pd.DataFrame(rows)
    df.attrs["calibration"] = facts
    return df
