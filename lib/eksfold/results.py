"""The summary table: one row per target, built from the units' metrics.json files.

>>> df = load_summary("runs/demo")   # doctest: +SKIP
"""
from __future__ import annotations

import io

from .run import SUMMARY, Run
from .storage import open_store

COLUMNS = [
    "target", "length", "pdb_id", "chain",
    "align_status", "align_wall_s", "align_cpu_s", "align_peak_rss_mb", "msa_depth",
    "infer_status", "feature_s", "inference_s", "infer_peak_rss_mb", "peak_cuda_mb",
    "device", "preset", "weights", "untrained", "mean_plddt", "ptm", "error",
]


def _status(metrics: dict | None) -> str:
    if metrics is None:
        return "missing"
    return "done" if metrics.get("status") == "ok" else "failed"


def summary_rows(run: Run) -> list[dict]:
    rows = []
    for target in run.targets:
        align = run.unit_metrics("align", target.id)
        infer = run.unit_metrics("infer", target.id)
        a, i = align or {}, infer or {}
        errors = [f"{stage}: {m['error']}" for stage, m in (("align", a), ("infer", i))
                  if m.get("status") == "failed" and m.get("error")]
        rows.append({
            "target": target.id, "length": target.length,
            "pdb_id": target.pdb_id, "chain": target.chain,
            "align_status": _status(align), "align_wall_s": a.get("wall_s"),
            "align_cpu_s": a.get("cpu_s"), "align_peak_rss_mb": a.get("tool_peak_rss_mb"),
            "msa_depth": a.get("msa_depth"),
            "infer_status": _status(infer), "feature_s": i.get("feature_s"),
            "inference_s": i.get("inference_s"), "infer_peak_rss_mb": i.get("peak_rss_mb"),
            "peak_cuda_mb": i.get("peak_cuda_mb"), "device": i.get("device"),
            "preset": i.get("preset"), "weights": i.get("weights"),
            "untrained": i.get("untrained"), "mean_plddt": i.get("mean_plddt"),
            "ptm": i.get("ptm"), "error": "; ".join(errors) or None,
        })
    for rejected in run.manifest.get("rejected_targets", []):
        rows.append({"target": rejected["target"], "align_status": "invalid",
                     "infer_status": "invalid", "error": rejected["problem"]})
    return rows


def write_summary(run: Run):
    """Rebuild ``summary.csv`` from the run's metrics and return it as a DataFrame."""
    import pandas as pd

    df = pd.DataFrame(summary_rows(run), columns=COLUMNS)
    run.store.write_text(SUMMARY, df.to_csv(index=False))
    return df


def load_summary(root: str):
    """The run's summary table as a pandas DataFrame (rebuilt if missing)."""
    import pandas as pd

    store = open_store(root)
    if not store.exists(SUMMARY):
        return write_summary(Run.open(root))
    return pd.read_csv(io.StringIO(store.read_text(SUMMARY)))
