"""The summary table: one row per target, built from the units' metrics.json files.

When the run has experimental reference structures (``<dir>/<pdb>.<chain>.pdb``, the layout
of ``data/cameo2022/structures`` and of ``eksfold data references``), its ``score`` stage
computed the accuracy columns :data:`eksfold.metrics.ACCURACY_COLUMNS` once per target, in the
workers; the table joins those unit records like any stage's. :func:`score_run` rescores a
run against another folder of references (reports, notebooks).

>>> df = load_summary("runs/demo")   # doctest: +SKIP
"""
from __future__ import annotations

import io
import logging
import os
from pathlib import Path

from .contracts import Board
from .metrics import ACCURACY_COLUMNS
from .records import unit_status
from .records import unit_dir
from .run import SUMMARY, Run
from .stages import get_stage
from .storage import open_store

log = logging.getLogger(__name__)

TARGET_COLUMNS = ["target", "length", "pdb_id", "chain"]
# align/infer columns in the order users know; stages added later append theirs
COLUMNS = [
    *TARGET_COLUMNS,
    "align_status", "align_wall_s", "align_cpu_s", "align_peak_rss_mb", "msa_depth", "msa_mode",
    "infer_status", "feature_s", "inference_s", "infer_peak_rss_mb", "infer_peak_rss_scope",
    "infer_rss_start_mb", "infer_rss_end_mb", "peak_cuda_mb",
    "device", "preset", "weights", "untrained", "mean_plddt", "ptm", "error",
]
REFERENCES_ENV = "EKSFOLD_REFERENCES"  # a folder of <pdb>.<chain>.pdb used for every run


def columns(stages) -> list[str]:
    """The summary columns for a run's stages: COLUMNS, then other stages' own (align's and
    infer's beyond COLUMNS too: the template columns); a stage with ``summary_at_end`` after
    "error"."""
    extra, last = [], []
    for name in stages:
        stage = get_stage(name)
        own = [c for c in stage.summary_columns if c not in COLUMNS]
        if name in ("align", "infer"):
            extra += own
            continue
        own = [f"{name}_status"] * stage.status_column + own
        (last if stage.summary_at_end else extra).extend(own)
    return COLUMNS[:-1] + extra + ["error"] + last


def summary_rows(run: Run) -> list[dict]:
    """One row per target from its unit records (the only source of the table's figures)."""
    stages = [(name, get_stage(name)(run)) for name in run.stages]
    refused, rows = run.refused, []
    for target in run.targets:
        row = {"target": target.id, "length": target.length,
               "pdb_id": target.pdb_id, "chain": target.chain}
        errors = []
        for name, stage in stages:
            record = run.record(name, target.id)
            row[f"{name}_status"] = unit_status(record)
            row.update(stage.summary(record))
            if record is not None and not record.done and record.error:
                errors.append(f"{name}: {record.error}")
        if target.id in refused:
            for name, _ in stages:
                if row[f"{name}_status"] != "done":
                    row[f"{name}_status"] = Board.INVALID
            errors.append(f"refused: {refused[target.id]}")
        row["error"] = "; ".join(errors) or None
        rows.append(row)
    for rejected in run.manifest.get("rejected_targets", []):
        rows.append({"target": rejected["target"], "error": rejected["problem"],
                     **{f"{name}_status": Board.INVALID for name, _ in stages}})
    return rows


def default_references_dir(run: Run) -> Path | str | None:
    """Where a run's reference structures are when none is named.

    ``$EKSFOLD_REFERENCES`` if set, else a ``structures/`` folder beside the run's input FASTA
    (``data/cameo2022/targets.fasta`` -> ``data/cameo2022/structures``), else None.
    """
    if os.environ.get(REFERENCES_ENV):
        value = os.environ[REFERENCES_ENV]
        return value if "://" in value else Path(value)   # Path() would fold s3:// into s3:/
    if run.config.score.references:   # what the run's score stage used
        ref = run.config.score.references
        return ref if "://" in ref else Path(ref)
    return references_for((run.manifest.get("inputs") or {}).get("fasta"))


def references_for(fasta) -> Path | str | None:
    """``$EKSFOLD_REFERENCES`` if set (an ``s3://`` URI stays a string), else a
    ``structures/`` folder beside ``fasta`` (or in it, for a folder of target files)."""
    if os.environ.get(REFERENCES_ENV):
        value = os.environ[REFERENCES_ENV]
        return value if "://" in value else Path(value)   # Path() would fold s3:// into s3:/
    if fasta and (Path(fasta).parent / "structures").is_dir():
        return Path(fasta).parent / "structures"
    if fasta and Path(fasta).is_dir() and (Path(fasta) / "structures").is_dir():
        return Path(fasta) / "structures"   # a folder of target files (data/complexes)
    return None


def with_accuracy(df, run_root: str, references_dir):
    """``df`` with :data:`ACCURACY_COLUMNS` (re)computed against ``references_dir``.

    Targets without a reference or a prediction get NaN. A reference that cannot be scored
    leaves the columns empty and logs why, rather than losing the rest of the table.
    """
    df = df.drop(columns=[c for c in ACCURACY_COLUMNS if c in df.columns])
    try:
        scores = score_run(Run.open(str(run_root)), references_dir)
    except Exception as exc:  # a malformed reference must not cost the summary
        log.warning("accuracy against %s not computed: %s: %s", references_dir,
                    type(exc).__name__, exc)
        scores = None
    if scores is None or scores.empty:
        return df.assign(**{c: float("nan") for c in ACCURACY_COLUMNS})
    return df.merge(scores, on="target", how="left")


def score_run(run: Run, references_dir):
    """Accuracy of every prediction of ``run`` that has a reference structure in
    ``references_dir`` (``<pdb>.<chain>.pdb``): ``target`` plus ACCURACY_COLUMNS."""
    import pandas as pd

    from .metrics import compare_structures

    rows = []
    for tid, reference in reference_structures(run, references_dir).items():
        try:
            model = read_prediction(run.root, tid)["pdb"]
        except FileNotFoundError:
            continue
        rows.append({"target": tid, **compare_structures(model, reference)})
    return pd.DataFrame(rows, columns=["target", *ACCURACY_COLUMNS])


def write_summary(run: Run, references_dir=None):
    """Rebuild ``summary.csv`` from the run's metrics and return it as a DataFrame.

    Parameters
    ----------
    run : Run
    references_dir : str or path-like, optional
        Rescore against this folder of reference structures ``<pdb>.<chain>.pdb`` instead of
        joining the run's ``score`` records (default: join them; no scoring here).
    """
    import pandas as pd

    df = pd.DataFrame(summary_rows(run), columns=columns(run.stages))
    if references_dir is None and not run.config.score.references:
        # a run made before scoring was a stage (no score records): scored here, as then
        legacy = default_references_dir(run)
        references_dir = legacy if legacy is not None and Path(legacy).is_dir() else None
    if references_dir is not None and Path(references_dir).is_dir():
        df = with_accuracy(df, run.root, references_dir)
    elif references_dir is not None:
        log.warning("references folder %s not found: no accuracy columns", references_dir)
    run.store.write_text(SUMMARY, df.to_csv(index=False))
    return df


def report_summary(run: Run, references_dir=None):
    """The table a report shows: the summary as written (accuracy included when the run's
    references were found), rescored only against references other than the run's own."""
    df = load_summary(run.root)
    default = default_references_dir(run)
    if references_dir and (default is None
                           or Path(references_dir).resolve() != Path(default).resolve()):
        df = with_accuracy(df, run.root, references_dir)
    return df


def describe_run(run: Run, df) -> str:
    """One Markdown line about a run: where, when, preset, weights, device, counts."""
    infer = run.config.infer
    return (f"**Run** `{run.root}` · created {run.manifest['created']} · preset "
            f"`{infer.preset}` · weights `{infer.weights}` · device `{infer.device}` · "
            f"{len(df)} targets, {int((df.infer_status == 'done').sum())} predicted")


def load_summary(root: str):
    """The run's summary table as a pandas DataFrame (rebuilt if missing)."""
    import pandas as pd

    store = open_store(root)
    if not store.exists(SUMMARY):
        return write_summary(Run.open(root))
    return pd.read_csv(io.StringIO(store.read_text(SUMMARY)))


def read_prediction(root: str, target_id: str) -> dict:
    """One target's predicted outputs, from a local or ``s3://`` run root.

    Returns ``{"pdb": PDB text, "plddt": array or None, "pae": array or None, "relaxed":
    relaxed PDB text or None}``; ``pae`` is written only by pTM presets, ``relaxed`` by the relax
    stage. A complex with no PDB form (OpenFold3: long chain ids, many atoms) gives its mmCIF
    text as ``"pdb"``. Raises ``FileNotFoundError`` when the target has no prediction.
    """
    import numpy as np

    store, base = open_store(str(root)), unit_dir("infer", target_id)
    pdb = f"{base}/unrelaxed.pdb"
    out = {"pdb": store.read_text(pdb if store.exists(pdb) or not store.exists(
        f"{base}/unrelaxed.cif") else f"{base}/unrelaxed.cif")}
    relaxed = f"{unit_dir('relax', target_id)}/relaxed.pdb"
    out["relaxed"] = store.read_text(relaxed) if store.exists(relaxed) else None
    for name in ("plddt", "pae"):
        rel = f"{base}/{name}.npy"
        out[name] = np.load(io.BytesIO(store.read_bytes(rel))) if store.exists(rel) else None
    return out


def reference_structures(run: Run, references_dir=None) -> dict:
    """``{target id: reference PDB path}`` for the run's targets whose reference exists.

    ``references_dir`` defaults to :func:`default_references_dir`; empty when there is none.
    """
    from .data.references import reference_path

    folder = references_dir or default_references_dir(run)
    if folder is None:
        return {}
    found = {t.id: reference_path(folder, t.pdb_id, t.chain) for t in run.targets
             if t.pdb_id and t.chain}
    return {tid: path for tid, path in found.items() if path.exists()}
