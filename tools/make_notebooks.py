#!/usr/bin/env python3
"""Write the notebook suite (notebooks/*.ipynb) from the cell sources below.

The notebooks are thin: narrative markdown and calls into ``eksfold``. Keeping their source
here makes them reviewable as code; the .ipynb files are committed without outputs.

    .venv/bin/python tools/make_notebooks.py           # (re)write notebooks/
    .venv/bin/python tools/make_notebooks.py --check   # exit 1 if notebooks/ differs

Every notebook has one code cell tagged ``parameters`` (papermill). Defaults are small: they
run headless on a 2-core CPU in about a minute each. Defaults name data by what it is (the
``cameo2022`` target set, the installation's database and runs folder), resolved by
:mod:`eksfold.site`, so a notebook runs the same from any working directory. Code cells are at
most 10 lines: logic belongs in the library.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "lib" / "eksfold" / "notebooks"   # packaged; notebooks/ at the root links here
PARAMS = "parameters"

# Defaults shared by the notebooks that make or read the same run (02, 03, analysis): a run
# root is reopened only with the same targets and settings, so they must agree.
RUN_PARAMS = '''\
targets = "cameo2022"        # a target set (cameo2022: with references; cameo92) or a FASTA path
database = None              # jackhmmer FASTA; None: the one `make setup` built
run_root = None              # a directory or s3://bucket/prefix; None: runs/notebooks
preset = "tiny"              # "tiny" (test-sized), "demo" (full network, no recycling), "model_1_ptm"
weights = "auto"             # published finetuning_ptm_2 if reachable and it fits, else "random"
target_ids, limit = None, 2  # ids (e.g. ["7pl4-a", "7sao-a"]), or the `limit` shortest
device = "auto"              # "auto", "cpu", "cuda"
executor = "local"           # "local" or "kubernetes" (EKS; see cluster/README.md)
executor_options = {}        # e.g. {"image": "<ecr>/eksfold-worker:<tag>", "kueue": True}
progress = "auto"            # "auto" (widgets in Jupyter), "widget" or "text"'''

RUN_CALL = '''\
run = eksfold.run_pipeline(
    targets, run_root or run_dir("notebooks"), preset=preset, weights=weights, device=device,
    databases=DatabaseConfig(uniref90=database) if database else None,
    executor=executor, executor_options=executor_options,
    ids=target_ids, limit=limit, shortest=True, stages=STAGES,
    reporter=make_reporter(progress))'''


def md(text):
    return ("markdown", text)


def code(text, *tags):
    return ("code", text, tags)


# --------------------------------------------------------------------------- 00
SETUP_CHECK = [
    md("""\
# 00 · Set-up check

Is everything in place to fold proteins here? This notebook checks **this machine** (alignment
tools, the Python environment, OpenFold and its attention extension, the device, the sequence
database, the offline 3Dmol.js for 3D views) and, with `mode = "eks"`, **the EKS cluster**
(API server, node pools, Kueue queues, the shared FSx volume, eksfold Jobs).

- Locally: run `make setup` first; `mode = "local"`.
- On JupyterHub in the cluster: `mode = "eks"`; the notebook Pod's service account is used.
  From a laptop: `aws eks update-kubeconfig --name <cluster>` and `mode = "eks"`.

Rows with status `missing` need fixing; `optional` ones only matter for some features;
`forbidden` means the notebook's service account may not read that object (by design it reads
nothing cluster-wide, see `cluster/k8s/rbac.yaml`)."""),
    code('''\
mode = "local"                            # "local" or "eks"
database = None                           # None: this installation's; on EKS /fsx/db/uniref90/uniref90.fasta
kubeconfig = None                         # eks mode from outside the cluster
context = None
namespace = None                          # default: the Pod's or the context's, else "eksfold"
strict = True                             # raise at the end when something needed is missing''',
         PARAMS),
    code('''\
import pandas as pd
from IPython.display import display

from eksfold import checks

pd.set_option("display.max_colwidth", 120)
assert mode in ("local", "eks"), f"mode must be 'local' or 'eks', not {mode!r}"'''),
    md("## This machine"),
    code('''\
machine = checks.local_checks(database)
machine'''),
    md("## The cluster (`mode = \"eks\"`)"),
    code('''\
if mode == "eks":
    cluster = checks.cluster_checks(kubeconfig=kubeconfig, context=context, namespace=namespace)
    display(cluster)
else:
    cluster = machine.iloc[0:0]
    print("mode='local': cluster checks skipped (set mode='eks' on JupyterHub or with a kubeconfig)")'''),
    md("## Verdict"),
    code('''\
problems = checks.problems(pd.concat([machine, cluster]))
print("\\n".join(problems) if problems else f"all required checks passed ({mode} mode)")
if strict and problems:
    raise RuntimeError(f"{len(problems)} required item(s) missing: see the table above")'''),
]

# --------------------------------------------------------------------------- 01
DATA = [
    md("""\
# 01 · Data: targets, weights, reference structures

What a run needs besides code, through `eksfold.data`:

1. **Targets**: a FASTA file. CAMEO headers (`| pdbid: 7SAO | chain: A`) name the experimental
   structure, so accuracy can be measured later. `data/cameo2022/` holds 12 short CAMEO-2022
   targets with their references; `data/cameo92/` the 92 targets of the original EKS study.
2. **Weights**: `random` is untrained (runtime and memory are real, structures are not);
   `finetuning_ptm_2` downloads OpenFold's published parameters (~360 MB) into the cache.
3. **Reference structures** `<pdb>.<chain>.pdb`, fetched from the PDB when missing.
4. **Precomputed alignments** (OpenProteinSet, `s3://openfold/pdb`) and the **sequence
   databases** for real MSAs (hundreds of GB: prepared once on the cluster's FSx volume).

Anything not fetched is printed as **SKIPPED** with the reason; nothing is skipped silently."""),
    code('''\
targets = "cameo2022"         # a target set of this installation or a FASTA path
limit = 4                     # how many targets (shortest first); None for all
references_dir = None         # <pdb>.<chain>.pdb files; None: structures/ beside the FASTA
fetch_references = True       # download references missing from references_dir
pdb_url = None                # URL template ({pdb}, {PDB}, {mid}); None: RCSB or $EKSFOLD_PDB_URL
weights = "random"            # "random" (UNTRAINED, nothing to download) or "finetuning_ptm_2"
weights_cache = None          # default $EKSFOLD_WEIGHTS_DIR or ~/.cache/eksfold/weights
alignments_source = None      # None: skip; "s3://openfold/pdb" or a local copy of that layout
alignments_dir = None         # None: runs/precomputed_alignments of this installation
database_mode = "reduced"     # "reduced", "full" or "casp14" (sizes only, nothing downloaded)''',
         PARAMS),
    code('''\
from pathlib import Path

import pandas as pd

from eksfold.data import databases, references
from eksfold.site import run_dir, target_file
from eksfold.structures import read_chain
from eksfold.target_files import read_fasta
from eksfold.targets import select'''),
    md("## Targets"),
    code('''\
fasta = target_file(targets)
references_dir = references_dir or str(fasta.parent / "structures")
targets = select(read_fasta(fasta), limit=limit, shortest=True)
pd.DataFrame([{k: v for k, v in t.to_dict().items() if k != "sequence"} for t in targets])'''),
    md("## Weights"),
    code('''\
if weights.startswith("random"):
    print(f"SKIPPED weights download: weights={weights!r} means UNTRAINED random weights; "
          "nothing to fetch. Runtime and memory figures are real, structures and pLDDT are not. "
          "Set weights='finetuning_ptm_2' for OpenFold's trained parameters.")
else:
    from eksfold.data.weights import resolve_weights
    path = resolve_weights(weights, weights_cache)
    print(f"{weights}: {path} ({path.stat().st_size / 2**20:.1f} MiB)")'''),
    md("## Reference structures"),
    code('''\
with_ref = [t for t in targets if t.pdb_id and t.chain]
missing = [t for t in with_ref
           if not references.reference_path(references_dir, t.pdb_id, t.chain).exists()]
print(f"{len(with_ref)} of {len(targets)} targets name a PDB chain; "
      f"{len(with_ref) - len(missing)} references present in {references_dir}")'''),
    code('''\
if missing and fetch_references:
    fetched = references.fetch_references(missing, references_dir, base_url=pdb_url)
    for key, result in fetched.items():
        print(f"  {key}: {'fetched' if isinstance(result, Path) else f'FAILED: {result}'}")
elif missing:
    print(f"SKIPPED fetching {len(missing)} references: fetch_references=False")'''),
    code('''\
rows = []
for t in with_ref:
    path = references.reference_path(references_dir, t.pdb_id, t.chain)
    chain = read_chain(path) if path.exists() else None
    rows.append({"target": t.id, "length": t.length, "reference": path.name,
                 "observed_residues": len(chain.sequence) if chain else None,
                 "first_residue": chain.resids[0] if chain else None})
refs = pd.DataFrame(rows)
refs'''),
    md("""\
References use the authors' residue numbering and often miss residues (tags, disordered
loops): `eksfold.metrics` matches residues by sequence alignment, not by number."""),
    md("## Precomputed alignments"),
    code('''\
if alignments_source is None:
    print("SKIPPED precomputed alignments: alignments_source=None. The align stage "
          "(notebook 02) computes MSAs with jackhmmer instead; set "
          "alignments_source='s3://openfold/pdb' to use OpenProteinSet's.")
else:
    from eksfold.data.alignments import chain_name, fetch_alignments
    for t in with_ref:
        dest = Path(alignments_dir or run_dir("precomputed_alignments")) / chain_name(t.pdb_id, t.chain)
        got = fetch_alignments(t.pdb_id, t.chain, dest, source=alignments_source)
        print(f"{t.id}: {sorted(p.name for p in got.iterdir()) if got else 'none published'}")'''),
    md("## Sequence databases"),
    code('''\
print(databases.describe(database_mode))
print(f"\\nSKIPPED download: the {database_mode!r} databases are far too big for a notebook. "
      "On EKS the data-preparation Job fills /fsx/db once "
      f"(`eksfold data databases prepare --mode {database_mode} --dest /fsx/db`); "
      "locally the demo uses the 20,000-sequence data/db built by `make setup`.")'''),
]

# --------------------------------------------------------------------------- 02
ALIGNMENTS = [
    md("""\
# 02 · Alignments

The **align** stage searches each target against the sequence databases (jackhmmer; hhblits
with `bfd`/`uniclust30`) and writes OpenFold's alignment folder `targets/<id>/align/`. The
number of sequences found, the **MSA depth**, is what AlphaFold2's accuracy depends on most.

The defaults align two short CAMEO-2022 targets against the small real UniProt sample built by
`make setup` (so depths are small); on EKS point `database` at `/fsx/db/uniref90/uniref90.fasta`
and use `executor = "kubernetes"`. Notebook 03 continues **the same run** (same parameters)."""),
    code(RUN_PARAMS, PARAMS),
    code('''\
import eksfold
from eksfold import viz
from eksfold.config import DatabaseConfig
from eksfold.progress import make_reporter
from eksfold.results import load_summary
from eksfold.site import run_dir

STAGES = ("align",)'''),
    md("## Run the align stage\nFinished units are skipped: rerunning resumes."),
    code(RUN_CALL),
    md("## MSA depth and alignment cost per target"),
    code('''\
df = load_summary(run.root)
df[["target", "length", "align_status", "msa_depth", "align_wall_s", "align_cpu_s",
    "align_peak_rss_mb", "error"]]'''),
    code('''\
done = df[df.align_status == "done"]
ax = done.plot.bar(x="target", y="msa_depth", legend=False, logy=True, figsize=(6, 3),
                   title="MSA depth per target (sequences)")
ax.set_ylabel("sequences in the MSA");'''),
    code('''\
viz.plot_alignment_runtime(done)'''),
    md("## Template hits\nWith template databases configured (`make setup` builds a small "
       "stand-in from the CAMEO 2022 reference structures) and a preset trained with templates, "
       "the align stage also searches them (HHsearch against PDB70, or hmmsearch against "
       "`pdb_seqres`); the hits sit beside the MSAs. Empty columns: no template search."),
    code('''\
df.reindex(columns=["target", "template_hits", "template_search_s"])'''),
    md("""\
With the 20,000-sequence sample most short targets find few homologues; the full UniRef90
(~150 M sequences) finds hundreds to thousands for typical targets."""),
    md("## jackhmmer vs MMseqs2 (committed benchmark of this machine profile)\n"
       "Per-query CPU time against databases padded to 4 M sequences, fitted and extrapolated "
       "to UniRef90's size; MMseqs2's prefilter and alignment parts measured apart (the "
       "alignments are capped per query, so only the prefilter keeps growing with the "
       "database); the fraction of jackhmmer's hits MMseqs2 finds "
       "(`python -m benchmarks.align` from a checkout; run `--msa mmseqs2` to align with MMseqs2)."),
    code('''\
from IPython.display import Image, display
from eksfold.bench.align import committed_comparison

table, summary, png = committed_comparison("cpu-2core")
display(Image(filename=png))
print({k: summary[k] for k in ("chosen_sensitivity", "speedup_measured", "speedup_at_uniref90",
                                "speedup_at_uniref90_last_two", "speedup_at_uniref90_batch",
                                "speedup_at_uniref90_stages", "sensitivity") if k in summary})
print("repeats in turns:", {k: v for k, v in summary.get("repeats", {}).items() if k.startswith("ratio")})'''),
]

# --------------------------------------------------------------------------- 03
INFERENCE = [
    md("""\
# 03 · Inference with the run monitor

The **infer** stage runs OpenFold on each aligned target and writes `unrelaxed.pdb` (pLDDT in
the B-factor column), `plddt.npy`, `pae.npy` (pTM presets) and `metrics.json`. The run monitor
shows one progress bar per stage and a table of targets; with the Kubernetes executor it shows
the Jobs' units the same way.

- `preset = "tiny"` is a test-sized network (seconds per target on a CPU); `"demo"` is the full
  48-block network without recycling (minutes per target on a CPU); `"model_1_ptm"` is
  OpenFold's own preset (a GPU is advisable).
- `weights = "auto"` (the default) uses OpenFold's published `finetuning_ptm_2` when its public
  bucket is reachable and the preset can load it (`demo`, `model_1_ptm`; downloaded once,
  verified, cached), else **UNTRAINED** random weights, and the first line printed says why:
  offline, or the test-sized `tiny` preset. Untrained structures and pLDDT are meaningless;
  runtime and memory are real. `weights = "random"` asks for untrained weights outright.

Same parameters as notebook 02: align units already done are skipped."""),
    code(RUN_PARAMS, PARAMS),
    code('''\
import eksfold
from eksfold import viz
from eksfold.config import DatabaseConfig
from eksfold.progress import make_reporter
from eksfold.results import load_summary, read_prediction, reference_structures
from eksfold.site import run_dir

STAGES = ("align", "infer", "score")   # score: accuracy, when the targets have references'''),
    md("## Run (the monitor updates while units run)"),
    code(RUN_CALL),
    code('''\
df = load_summary(run.root)
if df["untrained"].fillna(False).astype(bool).any():
    print("UNTRAINED random weights: structures and pLDDT below are meaningless; "
          "runtime and memory are real.")
df[["target", "length", "infer_status", "device", "preset", "feature_s", "inference_s",
    "infer_peak_rss_mb", "peak_cuda_mb", "mean_plddt", "ptm", "error"]]'''),
    md("## Templates used by each fold\nOpenFold's featuriser keeps at most 4 hits released "
       "before the run's `max_template_date` (a target's own structure is left out that way); "
       "the top template's identity and coverage are of the query."),
    code('''\
df.reindex(columns=["target", "templates_used", "top_template", "top_template_identity",
                    "top_template_coverage", "top_template_date"])'''),
    md("## The first prediction, coloured by pLDDT, on its experimental structure (grey)"),
    code('''\
finished = df[df.infer_status == "done"]
if finished.empty:
    raise RuntimeError("no target was predicted: see the error column above")
first = finished.iloc[0]
reference = reference_structures(run).get(first.target)  # None without a reference
pred = read_prediction(run.root, first.target)
label = " (UNTRAINED weights)" if first.untrained else ""
viz.view_structure(pred["pdb"], reference, title=f"{first.target}{label}")'''),
    code('''\
viz.plot_plddt(pred["plddt"], title=f"pLDDT of {first.target}{label}")'''),
    md("## Complexes: chains, interfaces and their scores\n"
       "OpenFold3 presets (`preset = \"of3-tiny\"` or `\"of3\"`) fold complexes: a ColabFold "
       "`A:B` record or an AlphaFold3/OpenFold3 JSON job is one target (try "
       "`targets = \"data/complexes/complexes.json\"`). ipTM is the model's confidence in the "
       "interfaces; DockQ and the ligand RMSD compare them with the reference complex. The "
       "view gives each chain a colour and draws ligands as sticks. A run of single chains "
       "shows an empty table here."),
    code('''\
complexes = finished[finished.reindex(columns=["chains"])["chains"].fillna(1) > 1]
display(complexes.reindex(columns=["target", "chains", "tokens", "ptm", "iptm",
                                   "ranking_score", "dockq", "dockq_min", "ligand_rmsd"]))
if not complexes.empty:
    name = complexes.iloc[0].target
    display(viz.view_complex(read_prediction(run.root, name)["pdb"], title=f"{name}{label}"))'''),
    md("Accuracy, PAE, the grid of all targets and the scaling plots are in `analysis.ipynb` "
       "(`eksfold report RUN` renders it as a shareable HTML page)."),
]

# --------------------------------------------------------------------------- analysis
ANALYSIS = [
    md("# Run report"),
    code('''\
run_root = None                  # the run to analyse (directory or s3://...); None: runs/notebooks
references_dir = None            # <pdb>.<chain>.pdb folder; None: $EKSFOLD_REFERENCES or
                                 # the structures/ folder beside the run's FASTA
viewer_background = "white"      # canvas colour of the 3D views''', PARAMS),
    code('''\
import pandas as pd
from IPython.display import HTML, Markdown, display

from eksfold import report_sections as sections, results, viz
from eksfold.run import Run
from eksfold.site import run_dir

viz.offline_3dmol()  # 3Dmol.js from the local npm package: views render with no internet'''),
    code('''\
run = Run.open(run_root or run_dir("notebooks"))
df = results.report_summary(run, references_dir)   # accuracy as write_summary computed it
refs = results.reference_structures(run, references_dir)
display(HTML(sections.header(run, df)))   # its first line: the weights, and why if untrained'''),
    md("## All targets\nClick a column header to sort."),
    code('''\
display(HTML(sections.sortable_table(df)))
print(f"{len(sections.failures(df))} target(s) not finished; "
      f"{int(df.get('tm_score', pd.Series(dtype=float)).notna().sum())} targets scored against "
      f"their reference structures")'''),
    md("## Targets"),
    code('''\
for section in sections.target_sections(run, df, refs, background=viewer_background):
    display(HTML(section))'''),
    md("## Across targets\nAccuracy, MSA depth against confidence, runtime and memory against "
       "length. A scaling exponent is fitted only with enough points and distinct lengths over "
       "a wide enough range; otherwise the points are shown alone and the plot says why."),
    code('''\
scored = df.dropna(subset=["tm_score"]) if "tm_score" in df else df.iloc[0:0]
if not scored.empty:
    display(viz.plot_accuracy(scored))
display(viz.plot_msa_depth_vs_plddt(df))
display(viz.plot_template_coverage_vs_plddt(df))
print(f"scaling fits: {viz.fit_supported(df['length']) or 'drawn (enough points and lengths)'}")
for plot in (viz.plot_runtime_vs_length, viz.plot_memory_vs_length, viz.plot_alignment_runtime):
    display(plot(df))
if "relax_s" in df and df["relax_s"].notna().any():
    display(viz.plot_relax_cost(df))'''),
    md("## Planned vs actual\nWhen a plan was saved with the run (`eksfold plan ... --save ROOT`)."),
    code('''\
from eksfold import planner
from eksfold.planner import plots as plan_plots

if planner.load_plan(run.root) is None:
    print("no plan saved with this run (eksfold plan TARGETS --save ROOT)")
else:
    print(planner.makespan_comparison(run.root))
    display(plan_plots.planned_vs_actual(planner.planned_vs_actual(run.root)))'''),
    md("""\
## About this report
`eksfold report RUN` executes this notebook with papermill (`run_root` set) and renders one
self-contained HTML page that opens offline, code hidden (`--show-code` keeps it). Header: what
ran and how good it is. Table: every target, sortable. Per target: the model coloured by pLDDT
over the experimental structure (grey), pLDDT and PAE, accuracy (TM-score, GDT-TS, lDDT-Cα,
RMSD), MSA depth and coverage, templates and relaxation."""),
]

# --------------------------------------------------------------------------- compare
COMPARE = [
    md("""\
# Comparison of runs

`eksfold report RUN_A RUN_B ...` executes this notebook: the runs over the targets they share
(jackhmmer against MMseqs2, two presets, templates on and off, ...). Every run is compared with
the first: per-target deltas of confidence, accuracy, time and memory, their plots, and the
models of each shared target side by side over the reference."""),
    code('''\
run_roots = []                   # two or more run roots; the first is the baseline
viewer_background = "white"      # canvas colour of the 3D views''', PARAMS),
    code('''\
from IPython.display import HTML, display

from eksfold import compare, compare_sections, viz

viz.offline_3dmol()
labels, runs, frames = compare.load_runs(run_roots)
table = compare.shared_table(frames, labels)
display(HTML(compare_sections.header(labels, runs, frames, table)))'''),
    md("## Deltas against the first run\nPositive: higher in that run than in the baseline."),
    code('''\
display(HTML(compare_sections.delta_tables(table, labels)))
display(compare.plot_deltas(table, labels))'''),
    md("## Shared targets\nEach run's model, coloured by pLDDT over the reference."),
    code('''\
for section in compare_sections.target_sections(labels, runs, table,
                                                background=viewer_background):
    display(HTML(section))'''),
]

# --------------------------------------------------------------------------- 04
TRADEOFFS = [
    md("""\
# 04 · Runtime and memory trade-offs

How inference time and peak memory grow with sequence length for each preset and device, and
how the alignment search grows with query length. Every inference measurement runs in a fresh
process (`eksfold.bench.inference_benchmark`), so its peak memory is its own. Weights do not
change runtime or memory: random (UNTRAINED) weights give real figures here.

The defaults finish in about a minute on a 2-core CPU (`tiny`). For the real trade-off study
use `presets = ["demo", "model_1_ptm", "model_1_ptm+long"]` and lengths up to the longest
targets on a GPU node; compare ratios and exponents within one run."""),
    code('''\
presets = ["tiny"]               # e.g. ["demo", "model_1_ptm", "model_1_ptm+long"]
lengths = [24, 48, 96]           # residues
device = "auto"                  # "auto", "cpu", "cuda"
weights = "random"               # runtime and memory do not depend on the weight values
threads = None                   # torch threads on CPU (None: all of this machine's share)
align_lengths = [50, 100, 200]   # query lengths for the jackhmmer benchmark ([] to skip)
database = None                  # jackhmmer FASTA; None: this installation's
align_queries = "cameo92"        # real proteins nearest each length (a target set or FASTA)
projection_n = 1_000_000         # proteins in the UniProt-like projection of the planner''', PARAMS),
    code('''\
import pandas as pd
from IPython.display import display

from eksfold import bench, viz
from eksfold.site import default_database, target_file'''),
    md("## Inference"),
    code('''\
frames = [bench.inference_benchmark(lengths, preset=p, device=device, weights=weights,
                                    threads=threads) for p in presets]
inference = pd.concat(frames, ignore_index=True)
if "error" in inference and inference["error"].notna().any():
    raise RuntimeError(f"benchmark failures:\\n{inference[inference['error'].notna()]}")
for p in presets:
    print(f"preset {p}:")
    print(bench.format_table(inference[inference.preset == p],
                             ["inference_s", "peak_rss_mb", "peak_cuda_mb"]), "\\n")'''),
    code('''\
viz.plot_runtime_vs_length(inference)'''),
    code('''\
viz.plot_memory_vs_length(inference.rename(columns={"peak_rss_mb": "infer_peak_rss_mb"}))'''),
    md("## Alignment"),
    code('''\
if align_lengths:
    align = bench.align_benchmark(align_lengths, database or str(default_database()), cpus=2,
                                  targets_fasta=str(target_file(align_queries)))
    print(bench.format_table(align, ["wall_s", "cpu_s", "peak_rss_mb"]))
else:
    align = None
    print("SKIPPED alignment benchmark: align_lengths is empty")'''),
    code('''\
if align is not None:
    display(viz.plot_alignment_runtime(align.rename(columns={"wall_s": "align_wall_s"})))'''),
    md("""\
Reading the exponents: attention in the Evoformer's pair stack is O(L³) in time and O(L²) in
memory, but at short lengths fixed costs (MSA padding, model set-up) dominate, so small-L
exponents understate the asymptotic ones. The `+long` presets trade runtime for memory."""),
    md("""\
## Inference settings: time against memory, and where the automatic choice switches
The committed sweeps (`eksfold bench settings`, per machine profile: this CPU, and a GPU's
when `tools/gpu_check.sh` has run on one) with the fitted cost models per setting. The
automatic choice (`--settings auto`) takes the fastest setting predicted to fit the memory
budget with a 15 % margin; the vertical lines are the lengths where it switches."""),
    code('''\
from eksfold.memory.plots import plot_profiles

for profile, fig in plot_profiles(preset="demo").items():
    print(f"profile {profile}")
    display(fig)'''),
    md("""\
## The plan for CAMEO-92 on the cluster in `cluster/`
`eksfold.planner` simulates the executors' schedule (their sharding and GPU routing) on the
NodePools of `cluster/` with a shipped price table. GPU inference costs come from the
reference profile (published V100 figures, stated in `lib/eksfold/profiles/reference-*/`), not
from measurements on a GPU; the MMseqs2 speed is this project's measured speedup over jackhmmer
(`profiles/cpu-2core/align.json`), not ColabFold's stated 40x."""),
    code('''\
from eksfold import planner
from eksfold.planner import plots
from eksfold.planner.projection import SOURCE, project

cluster = planner.default_cluster()      # NodePools in cluster/ + shipped price table
print(cluster.describe())'''),
    code('''\
plans = {f"{m}, {'spot' if s else 'on-demand'}": planner.plan("cameo92", cluster=cluster,
                                                             msa_mode=m, spot=s)
         for m in ("jackhmmer", "mmseqs2") for s in (False, True)}
for name, p in plans.items():
    print(f"{name:22s} {planner.fmt_duration(p.makespan_s):>9s}  ${p.cost:7,.2f}  "
          f"critical: {p.critical_stage()}")
display(plots.compare(plans, "CAMEO-92 on cluster/ (reference profile, not measured)"))'''),
    md("""\
### Streaming vs the classic batch window
The Kubernetes executor streams (`stream=True`, what `eksfold plan` recommends): the inference
Job is submitted with the alignment Job, held only for the planned lead (GPU nodes ready when
the first alignment is predicted to finish), and each GPU worker takes its shard's targets,
longest first, as their alignments are committed. The classic form waits for a batch window
after the first alignment before asking for GPUs. Same cluster, same targets; the dashed line
is the schedule's lower bound (critical target, node start, total work over the GPUs)."""),
    code('''\
p25 = planner.plan("cameo92", cluster=cluster, msa_mode="mmseqs2", spot=True, deadline="25m")
print(p25.summary())
display(plots.gantt(p25, title="streaming: " + planner.fmt_duration(p25.makespan_s)
                    + f", ${p25.cost:,.2f}"))
counts = {p.name: p25.node_counts.get(p.name, 0) for p in cluster.pools}
classic = planner.plan("cameo92", cluster=cluster.scaled(**counts), msa_mode="mmseqs2",
                       spot=True, batch_window=300)
display(plots.gantt(classic, title="classic 5-minute batch window, same nodes: "
                    + planner.fmt_duration(classic.makespan_s) + f", ${classic.cost:,.2f}"))'''),
    code('''\
sweep = planner.size_sweep("cameo92", "eksfold-infer", (1, 2, 4, 8, 16), cluster=cluster,
                           msa_mode="mmseqs2", spot=True)
display(plots.size_tradeoff(sweep, "eksfold-infer", "CAMEO-92, MMseqs2, spot: GPU nodes"))'''),
    code('''\
print(SOURCE)
print(project(projection_n, cluster=cluster))
try:
    planner.plan("cameo92", cluster=cluster, msa_mode="jackhmmer", deadline="10m")
except planner.InfeasiblePlan as exc:
    print(exc)'''),
]

NOTEBOOKS = {
    "00_setup_check.ipynb": SETUP_CHECK,
    "01_data.ipynb": DATA,
    "02_alignments.ipynb": ALIGNMENTS,
    "03_inference.ipynb": INFERENCE,
    "analysis.ipynb": ANALYSIS,
    "compare.ipynb": COMPARE,
    "04_tradeoffs.ipynb": TRADEOFFS,
}


def build(cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                                  "name": "python3"},
                   "language_info": {"name": "python"}}
    for i, cell in enumerate(cells):
        if cell[0] == "markdown":
            c = nbformat.v4.new_markdown_cell(cell[1])
        else:
            c = nbformat.v4.new_code_cell(cell[1])
            if cell[2]:
                c.metadata["tags"] = list(cell[2])
        c.id = f"c{i:02d}"  # stable ids: regenerating gives the same file
        nb.cells.append(c)
    assert sum(PARAMS in c.metadata.get("tags", []) for c in nb.cells) == 1
    nbformat.validate(nb)
    return nb


def render(cells) -> str:
    return nbformat.writes(build(cells)) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only compare with notebooks/")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    stale = []
    for name, cells in NOTEBOOKS.items():
        path, text = args.out / name, render(cells)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            args.out.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print(f"out of date (run tools/make_notebooks.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
