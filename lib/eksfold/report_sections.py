"""The parts of a run report as HTML: the header, a sortable table, one section per target.

The analysis notebook displays these (``display(HTML(...))``), so the report page reads top
down: what ran and how good it is (:func:`header`), every target in a sortable table
(:func:`sortable_table`), then one section per target (:func:`target_section`: 3D view
coloured by pLDDT over the reference, pLDDT and PAE plots, accuracy, MSA depth and coverage,
templates, relaxation). Figures are inline PNGs; nothing loads from the network.

The templates part reads the summary's template columns (hits, templates used, the top one);
a run without a template search says so.

>>> html = header(run, df)                                     # doctest: +SKIP
"""
from __future__ import annotations

import math
import tempfile
from datetime import datetime
from pathlib import Path

import numpy as np

from .alignment.msa import MSA_SUFFIXES, read_msa_sequences
from .report_html import PNG_DPI, esc, fmt, png  # noqa: F401  (part of this module's API)

ACCURACY_LABELS = {"tm_score": "TM-score", "gdt_ts": "GDT-TS", "lddt_ca": "lDDT-Cα",
                   "rmsd": "RMSD (Å)"}
TABLE_COLUMNS = ["target", "length", "msa_depth", "mean_plddt", "ptm", "tm_score", "gdt_ts",
                 "lddt_ca", "rmsd", "align_wall_s", "inference_s", "relax_s",
                 "infer_peak_rss_mb", "infer_status", "relax_status"]




STYLE = """<style>
.eks-header{font:14px/1.45 sans-serif;margin:4px 0 14px}
.eks-weights{padding:8px 12px;font:bold 15px sans-serif;border-radius:3px;margin-bottom:8px}
.eks-weights.untrained{border:3px solid #c62828;background:#ffebee;color:#b71c1c}
.eks-weights.trained{border:2px solid #2e7d32;background:#e8f5e9;color:#1b5e20}
.eks-facts{display:grid;grid-template-columns:max-content auto;gap:2px 14px}
.eks-facts dt{font-weight:bold}.eks-facts dd{margin:0}
.eks-target{border-top:2px solid #ddd;margin-top:18px;padding-top:6px;font:13px sans-serif}
.eks-target h3{margin:4px 0}
.eks-row{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start}
.eks-note{color:#555;font-style:italic}
table.eks-sortable{border-collapse:collapse;font:12px sans-serif}
table.eks-sortable th{cursor:pointer;background:#f0f0f0;position:sticky;top:0}
table.eks-sortable th,table.eks-sortable td{border:1px solid #ddd;padding:2px 6px;text-align:right}
table.eks-sortable td:first-child,table.eks-sortable td.text{text-align:left}
</style>"""

# Click a header to sort by it (again: the other way); numbers as numbers, "–" last.
SORT_SCRIPT = """<script>
document.querySelectorAll('table.eks-sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0], rows = Array.from(body.rows);
      var dir = th.dataset.dir === 'asc' ? -1 : 1; th.dataset.dir = dir === 1 ? 'asc' : 'desc';
      var key = function (r) { var t = r.cells[col].textContent.trim();
        var n = parseFloat(t); return t === '–' ? null : (isNaN(n) || /[a-z]/i.test(t) && !/^[-\\d.e+]+$/i.test(t) ? t : n); };
      rows.sort(function (a, b) { var x = key(a), y = key(b);
        if (x === null) return 1; if (y === null) return -1;
        return (typeof x === typeof y ? (x > y) - (x < y) : (typeof x === 'number' ? -1 : 1)) * dir; });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
</script>"""


# -- the header --------------------------------------------------------------------------
def weights_info(run, df=None) -> dict:
    """What the run folded with: the manifest's record of the choice (``--weights auto``),
    else the config's spec and the units' own labels."""
    from .weights import is_untrained
    from .weights_choice import WeightsChoice

    chosen = (run.manifest.get("inputs") or {}).get("weights")
    if isinstance(chosen, dict) and chosen.get("line"):
        return chosen
    spec = run.config.infer.weights
    sha = None
    if df is not None and "weights_sha256" in df:
        found = df["weights_sha256"].dropna()
        sha = str(found.iloc[0]) if len(found) else None
    choice = WeightsChoice(asked=spec, weights=spec, sha256=sha)
    return {**choice.to_dict(), "untrained": is_untrained(spec)}


def wall_time_s(run) -> float | None:
    """From the first unit's start to the last unit's end, over every stage."""
    starts, ends = [], []
    for stage in run.stages:
        for target in run.targets:
            record = run.record(stage, target.id)
            if record is None:
                continue
            for stamp, into in ((record.started, starts), (record.finished, ends)):
                if stamp:
                    try:
                        into.append(datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
                    except ValueError:
                        pass
    if not starts or not ends:
        return None
    return (max(ends) - min(starts)).total_seconds()


def _mean(df, column):
    if column not in df or df[column].notna().sum() == 0:
        return None
    return float(df[column].mean())


def failures(df) -> list[tuple[str, str]]:
    """``(target, reason)`` for every target with a unit not done (or refused)."""
    status = [c for c in df.columns if c.endswith("_status")]
    bad = df[(df[status] != "done").any(axis=1)] if status else df.iloc[0:0]
    return [(str(r.target), str(r.error) if isinstance(r.error, str) else "not run")
            for r in bad.itertuples()]


def duration(seconds) -> str:
    if seconds is None:
        return "–"
    minutes, s = divmod(int(round(seconds)), 60)
    return f"{minutes} min {s:02d} s" if minutes else f"{s} s"


def header(run, df) -> str:
    """"What ran and how good is it": weights (first line), targets, preset, device, wall time,
    mean confidence and accuracy, failures with reasons."""
    weights = weights_info(run, df)
    cls = "untrained" if weights.get("untrained") else "trained"
    infer = run.config.infer
    devices = sorted({str(d) for d in df.get("device", []) if isinstance(d, str)})
    done = int((df.get("infer_status") == "done").sum()) if "infer_status" in df else 0
    fails = failures(df)
    scored = int(df["tm_score"].notna().sum()) if "tm_score" in df else 0
    confidence = ", ".join(f"{label} {fmt(_mean(df, c))}" for c, label in
                           (("mean_plddt", "mean pLDDT"), ("ptm", "mean pTM"))
                           if _mean(df, c) is not None) or "–"
    accuracy = ", ".join(f"{ACCURACY_LABELS[c]} {fmt(_mean(df, c), 3 if c != 'rmsd' else 2)}"
                         for c in ("tm_score", "lddt_ca", "gdt_ts", "rmsd")
                         if _mean(df, c) is not None)
    msa = (f"median depth {fmt(float(df['msa_depth'].median()), 0)}, "
           f"{int((df['msa_depth'] > 1).sum())} of {int(df['msa_depth'].notna().sum())} "
           "targets with homologues" if "msa_depth" in df and df["msa_depth"].notna().any()
           else "–")
    facts = [
        ("Run", f"<code>{esc(run.root)}</code> · created {esc(run.manifest.get('created', '?'))}"),
        ("Targets", f"{len(df)} ({done} predicted, {len(fails)} not finished)"),
        ("Preset", f"<code>{esc(infer.preset)}</code> · stages {esc(', '.join(run.stages))}"),
        ("Weights", f"<code>{esc(weights.get('weights'))}</code>"
                    + (f" · sha256 <code>{esc(str(weights['sha256'])[:16])}</code>"
                       if weights.get("sha256") else "")
                    + (" · <b>UNTRAINED</b>" if weights.get("untrained") else " · trained")),
        ("Device", esc(", ".join(devices) or infer.device)),
        ("Wall time", duration(wall_time_s(run))),
        ("Confidence", confidence + (" (meaningless: untrained)" if weights.get("untrained")
                                     else "")),
        ("Accuracy", (f"{accuracy} over {scored} targets with a reference structure"
                      if accuracy else "no reference structures found for these targets")),
        ("MSA", msa),
    ]
    rows = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    fail_html = ""
    if fails:
        items = "".join(f"<li><b>{esc(t)}</b>: {esc(why)}</li>" for t, why in fails)
        fail_html = f"<p><b>Not finished</b></p><ul>{items}</ul>"
    return (f'{STYLE}<div class="eks-header"><div class="eks-weights {cls}">'
            f'{esc(weights.get("line"))}</div><dl class="eks-facts">{rows}</dl>{fail_html}</div>')


# -- the table ---------------------------------------------------------------------------
def sortable_table(df, columns=None, *, table_id: str = "eks-summary") -> str:
    """An HTML table whose column headers sort it (the script is inline, once per table)."""
    columns = [c for c in (columns or TABLE_COLUMNS) if c in df.columns]
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = []
    for row in df[columns].itertuples(index=False):
        cells = []
        for column, value in zip(columns, row):
            text = fmt(value, 3 if column in ("tm_score", "gdt_ts", "lddt_ca", "ptm") else 2)
            cls = ' class="text"' if isinstance(value, str) else ""
            if len(text) > 60:   # long errors: the start in the cell, all of it on hover
                cells.append(f'<td{cls} title="{esc(text)}">{esc(text[:57])}…</td>')
            else:
                cells.append(f"<td{cls}>{esc(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'{STYLE}<table class="eks-sortable" id="{esc(table_id)}"><thead><tr>{head}</tr>'
            f'</thead><tbody>{"".join(body)}</tbody></table>{SORT_SCRIPT}')


# -- one target ------------------------------------------------------------------------------
def msa_coverage(run, target_id: str) -> tuple[np.ndarray, int] | None:
    """Per query residue, how many MSA rows cover it (all the align unit's MSAs together),
    and the number of rows; None when the unit wrote no MSA."""
    from .records import unit_dir

    record = run.record("align", target_id)
    if record is None or not record.done:
        return None
    names = [n for n in record.outputs if Path(n).suffix in MSA_SUFFIXES]
    if not names:
        return None
    counts, rows = None, 0
    with tempfile.TemporaryDirectory(prefix="eksfold-msa-") as tmp:
        for name in names:
            local = Path(tmp) / Path(name).name
            local.write_bytes(run.store.read_bytes(f"{unit_dir('align', target_id)}/{name}"))
            seqs = list(read_msa_sequences(local).values())
            if not seqs:
                continue
            if local.suffix == ".sto":   # match columns: where the query has a residue
                keep = [i for i, c in enumerate(seqs[0]) if c not in "-."]
                matrix = np.array([[s[i] not in "-." for i in keep] for s in seqs])
            else:                        # a3m: lower case are insertions
                matrix = np.array([[c != "-" for c in s if not c.islower() and c != "."]
                                   for s in seqs])
            counts = matrix.sum(axis=0) if counts is None or len(counts) != matrix.shape[1] \
                else counts + matrix.sum(axis=0)
            rows += len(seqs)
    return (counts, rows) if counts is not None else None


def _coverage_figure(coverage, title):
    from .plots import _figure

    counts, rows = coverage
    fig, (ax,) = _figure(size=(5.0, 2.4))
    ax.fill_between(np.arange(1, len(counts) + 1), counts, step="mid", color="#4a7fb5", alpha=0.8)
    ax.set(xlabel="residue", ylabel="sequences", title=title, ylim=(0, max(counts.max(), 1) * 1.1))
    return fig


def _relax_figure(row, title):
    from .plots import _figure

    fig, axes = _figure(2, ncols=2, size=(2.4, 2.2))
    for ax, (label, before, after) in zip(axes, (
            ("energy (kcal/mol)", row.get("energy_before"), row.get("energy_after")),
            ("violations", row.get("violations_before"), row.get("violations_after")))):
        ax.bar(["before", "after"], [before or 0, after or 0], color=["#999", "#2e7d32"])
        ax.set(title=label)
    fig.suptitle(title, fontsize=9)
    return fig


def _accuracy_line(row) -> str:
    parts = [f"{label} {fmt(row.get(c), 3 if c != 'rmsd' else 2)}"
             for c, label in ACCURACY_LABELS.items() if row.get(c) is not None
             and not (isinstance(row.get(c), float) and math.isnan(row.get(c)))]
    return " · ".join(parts) if parts else "no reference structure: no accuracy"


def _templates_part(row) -> str:
    if row.get("template_hits") is None and row.get("templates_used") is None:
        return '<p class="eks-note">Templates: this run searched no templates.</p>'
    found = (f'{fmt(row.get("template_hits"))} hits in {fmt(row.get("template_search_s"))} s'
             if row.get("template_hits") is not None else "hits from precomputed alignments")
    used = row.get("templates_used")
    if not used:
        return f"<p>Templates: {esc(found)}; none used by the fold.</p>"
    top = (f'top {row.get("top_template")}: identity {fmt(row.get("top_template_identity"))}, '
           f'coverage {fmt(row.get("top_template_coverage"))}, released '
           f'{row.get("top_template_date") or "?"}')
    return f"<p>Templates: {esc(found)}; {fmt(used)} used ({esc(top)}).</p>"


def target_section(run, row, reference=None, *, untrained: bool = False,
                   background: str = "white", width: int = 480, height: int = 360) -> str:
    """One target: 3D view over the reference, pLDDT and PAE, accuracy, MSA, templates, relax."""
    from . import complex_report, plots, views
    from .results import read_prediction

    row = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
    tid = str(row["target"])
    tag = " · UNTRAINED" if untrained else ""
    facts = [f"length {fmt(row.get('length'))}", f"MSA depth {fmt(row.get('msa_depth'))}",
             f"mean pLDDT {fmt(row.get('mean_plddt'))}", f"pTM {fmt(row.get('ptm'), 3)}",
             _accuracy_line(row)]
    parts = [f'<div class="eks-target" id="target-{esc(tid)}"><h3>{esc(tid)}</h3>'
             f'<p>{esc(" · ".join(facts))}</p>']
    try:
        pred = read_prediction(run.root, tid)
    except FileNotFoundError:
        why = row.get("error") or "no prediction"
        parts.append(f'<p class="eks-note">No prediction: {esc(why)}</p></div>')
        return "".join(parts)
    metrics = _infer_metrics(run, tid)
    complex_ = complex_report.is_complex(row, metrics)
    if complex_:   # chains coloured; the reference complex is scored by DockQ, not overlaid
        view = views.view_complex(pred["pdb"], title=f"{tid}{tag}", background=background,
                                  width=width, height=height)
    else:
        view = views.view_structure(pred["pdb"], reference, title=f"{tid}{tag}",
                                    background=background, width=width, height=height)
    figures = [png(plots.plot_plddt(pred["plddt"], title=f"pLDDT · {tid}{tag}"))]
    if pred["pae"] is not None and not complex_:
        figures.append(png(plots.plot_pae(pred["pae"], title=f"PAE · {tid}{tag}")))
    parts.append(f'<div class="eks-row"><div>{view._make_html()}</div>'
                 f'<div>{"".join(figures)}</div></div>')
    if complex_:
        parts.append(complex_report.complex_part(row, pred["pdb"], pred["pae"], metrics,
                                                 f"{tid}{tag}"))
    elif reference is None:
        parts.append('<p class="eks-note">No reference structure: the view shows the '
                     'prediction alone.</p>')
    coverage = msa_coverage(run, tid)
    msa_html = (png(_coverage_figure(coverage, f"MSA coverage · {tid} ({coverage[1]} rows)"))
                if coverage else '<p class="eks-note">No MSA recorded for this target.</p>')
    relax_html = '<p class="eks-note">Not relaxed (no relax stage in this run).</p>'
    if row.get("relax_status") == "done":
        relax_html = (png(_relax_figure(row, f"Amber relaxation · {tid}"))
                      + f'<p>relaxed in {fmt(row.get("relax_s"))} s; Cα moved '
                        f'{fmt(row.get("ca_rmsd_moved"))} Å</p>')
    elif row.get("relax_status") not in (None, "done"):
        why = [e for e in str(row.get("error") or "").split("; ") if e.startswith("relax")]
        relax_html = (f'<p class="eks-note">Relaxation {esc(row.get("relax_status"))}'
                      f'{": " + esc(why[0]) if why else ""}.</p>')
    parts.append(f'<div class="eks-row"><div>{msa_html}</div><div>{relax_html}</div></div>')
    parts.append(_templates_part(row))
    parts.append("</div>")
    return "".join(parts)


def _infer_metrics(run, target_id: str) -> dict:
    try:
        return run.record("infer", target_id).metrics or {}
    except Exception:  # noqa: BLE001 - no record (old run, failed unit): the table's columns
        return {}


def target_sections(run, df, references: dict | None = None, **kwargs) -> list[str]:
    """:func:`target_section` for every target of the table, in its order."""
    from .results import reference_structures

    refs = reference_structures(run) if references is None else references
    untrained = bool(weights_info(run, df).get("untrained"))
    return [target_section(run, row, refs.get(row["target"]), untrained=untrained, **kwargs)
            for row in df.to_dict("records") if isinstance(row.get("target"), str)]
