"""The parts of a comparison report as HTML (``compare.ipynb``): a header per run, the delta
tables, and one section per shared target with each run's model side by side.

>>> display(HTML(header(labels, runs, frames, table)))                # doctest: +SKIP
"""
from __future__ import annotations

from .compare import METRICS, delta_summary
from .report_sections import (STYLE, duration, esc, failures, fmt, sortable_table, wall_time_s,
                              weights_info)


def header(labels, runs, frames, table) -> str:
    """One line per run (weights line first, preset, MSA mode, wall time, failures) and the
    number of shared targets."""
    rows = []
    for label, run, df in zip(labels, runs, frames):
        weights = weights_info(run, df)
        cls = "untrained" if weights.get("untrained") else "trained"
        mode = run.config.align.msa_mode if hasattr(run.config.align, "msa_mode") else "?"
        rows.append(
            f'<tr><td class="text"><b>{esc(label)}</b></td><td class="text"><code>{esc(run.root)}'
            f'</code></td><td class="text">{esc(run.config.infer.preset)}</td>'
            f'<td class="text">{esc(mode)}</td><td class="text">'
            f'<span class="eks-weights {cls}" style="padding:1px 6px;font-size:12px">'
            f"{esc(weights.get('line'))}</span></td>"
            f"<td>{len(df)}</td><td>{duration(wall_time_s(run))}</td>"
            f"<td>{len(failures(df))}</td></tr>")
    head = ("<tr><th>run</th><th>root</th><th>preset</th><th>MSA</th><th>weights</th>"
            "<th>targets</th><th>wall time</th><th>not finished</th></tr>")
    return (f'{STYLE}<div class="eks-header"><p><b>{len(table)} shared targets</b> compared '
            f"with <b>{esc(labels[0])}</b> (the baseline).</p>"
            f'<table class="eks-sortable">{head}{"".join(rows)}</table></div>')


def delta_tables(table, labels) -> str:
    """The summary of deltas (mean, median, better/worse counts) and the per-target table."""
    summary = delta_summary(table, labels)
    columns = ["target", "length"] + [c for c in table.columns if c.startswith("delta ")]
    return (sortable_table(summary, list(summary.columns), table_id="eks-delta-summary")
            + "<br>" + sortable_table(table, columns, table_id="eks-deltas"))


def target_sections(labels, runs, table, *, background: str = "white",
                    cell=(320, 280)) -> list[str]:
    """Per shared target: each run's model side by side (linked rotation) over the baseline's
    reference, with that target's figures per run."""
    from . import views
    from .results import read_prediction, reference_structures

    refs = reference_structures(runs[0])
    out = []
    for row in table.to_dict("records"):
        tid = row["target"]
        models, missing = {}, []
        for label, run in zip(labels, runs):
            try:
                models[label] = read_prediction(run.root, tid)["pdb"]
            except FileNotFoundError:
                missing.append(label)
        facts = " · ".join(
            f"{name} " + " / ".join(fmt(row.get(f"{column}[{label}]"),
                                        3 if column in ("tm_score", "ptm", "lddt_ca") else 1)
                                    for label in labels)
            for column, (name, _) in METRICS.items() if f"{column}[{labels[0]}]" in row
            and column in ("mean_plddt", "tm_score", "inference_s", "infer_peak_rss_mb"))
        html = [f'<div class="eks-target" id="target-{esc(tid)}"><h3>{esc(tid)}</h3>'
                f"<p>{esc(facts)} ({esc(' / '.join(labels))})</p>"]
        if models:
            ref = refs.get(tid)
            grid = views.view_grid(models, {k: ref for k in models} if ref else None,
                                   ncols=len(models), cell=cell, linked=True,
                                   background=background)
            html.append(grid._make_html())
        if missing:
            html.append(f'<p class="eks-note">No prediction in {esc(", ".join(missing))}.</p>')
        out.append("".join(html) + "</div>")
    return out
