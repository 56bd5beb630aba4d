"""The notebook suite runs headless: papermill executes every notebook in notebooks/ in local mode
with small parameters (preset tiny, two short CAMEO-2022 targets, the small DB of make setup); a
failing cell fails the test. Notebooks 02 and 03 make one run that the analysis notebook (through
`eksfold report`) and the browser check reuse."""
import functools
import http.server
import importlib.util
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import numpy as np
import papermill
import pandas as pd
import pytest

from eksfold import checks, cli, report, viz
from eksfold.metrics import ACCURACY_COLUMNS as _ACC
from eksfold.results import COLUMNS, columns, load_summary
from test_report import chromium_screenshot, embedded_pngs, find_image, region_of

ACCURACY_COLUMNS = list(_ACC)

PROJECT = Path(__file__).resolve().parents[1]
NOTEBOOKS = PROJECT / "notebooks"
CAMEO2022 = PROJECT / "data" / "cameo2022"
TARGETS = ["7pl4-a", "7sao-a"]      # 31 and 38 residues, both with references
BACKGROUND = (0xFF, 0xEF, 0xD5)     # the main viewer's canvas colour in the report
WIDGET = "application/vnd.jupyter.widget-view+json"
TESTED = {"00_setup_check.ipynb", "01_data.ipynb", "02_alignments.ipynb", "03_inference.ipynb",
          "04_tradeoffs.ipynb", "analysis.ipynb", "compare.ipynb"}   # compare: test_run_report


def execute(name: str, out_dir: Path, cwd: Path = NOTEBOOKS, **parameters) -> nbformat.NotebookNode:
    """Run a notebook as JupyterLab would (working directory notebooks/); return it executed."""
    out = out_dir / name
    papermill.execute_notebook(str(NOTEBOOKS / name), str(out), parameters=parameters,
                               cwd=str(cwd), kernel_name="python3", progress_bar=False)
    return nbformat.read(str(out), as_version=4)


def outputs(nb, kind: str | None = None) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if kind is None or o.output_type == kind]


def text_of(nb) -> str:
    parts = []
    for o in outputs(nb):
        if o.output_type == "stream":
            parts.append(o.text)
        elif "data" in o:
            parts.append(o.data.get("text/plain", ""))
    return "\n".join(parts)


def images(nb) -> list:
    return [o for o in outputs(nb) if "image/png" in o.get("data", {})]


def html_outputs(nb) -> list:
    return [o.data["text/html"] for o in outputs(nb) if "text/html" in o.get("data", {})]


@pytest.fixture(scope="module")
def run_params(small_db, tmp_path_factory):
    root = tmp_path_factory.mktemp("nbrun") / "run"
    return {"targets": str(CAMEO2022 / "targets.fasta"), "database": str(small_db),
            "run_root": str(root), "preset": "tiny", "weights": "random",
            "target_ids": TARGETS, "limit": None}


@pytest.fixture(scope="module")
def aligned(run_params, tmp_path_factory):
    """Notebook 02 on the shared run: the align stage, text progress."""
    return execute("02_alignments.ipynb", tmp_path_factory.mktemp("nb02"), progress="text",
                   **run_params)


@pytest.fixture(scope="module")
def inferred(aligned, run_params, tmp_path_factory):
    """Notebook 03 continues the same run: the infer stage under the widget monitor."""
    return execute("03_inference.ipynb", tmp_path_factory.mktemp("nb03"), progress="auto",
                   **run_params)


@pytest.fixture(scope="module")
def rendered(inferred, run_params):
    """`eksfold report RUN` on the notebooks' run: executes analysis.ipynb, renders HTML."""
    code = cli.main(["report", run_params["run_root"],
                     "-p", "viewer_background=#{:02X}{:02X}{:02X}".format(*BACKGROUND)])
    assert code == 0
    return Path(run_params["run_root"]) / "report.html"


# ------------------------------------------------------------------ the files themselves

def test_every_notebook_is_tested_and_generated_from_tools():
    assert {p.name for p in NOTEBOOKS.glob("*.ipynb")} == TESTED
    spec = importlib.util.spec_from_file_location("make_notebooks", PROJECT / "tools" / "make_notebooks.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    assert make.main(["--check"]) == 0, "notebooks/ differs from tools/make_notebooks.py"


@pytest.mark.parametrize("name", sorted(TESTED))
def test_notebooks_are_committed_clean_with_one_parameters_cell(name):
    nb = nbformat.read(str(NOTEBOOKS / name), as_version=4)
    nbformat.validate(nb)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code"
    assert not any(c.get("outputs") or c.get("execution_count") for c in nb.cells if c.cell_type == "code")
    assert nb.cells[0].cell_type == "markdown"  # narrative first
    assert papermill.inspect_notebook(str(NOTEBOOKS / name))  # papermill reads the parameters


@pytest.mark.parametrize("name", sorted(TESTED))
def test_code_cells_are_short_calls_into_the_library(name):
    nb = nbformat.read(str(NOTEBOOKS / name), as_version=4)
    long = [(i, len(c.source.splitlines())) for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and len(c.source.splitlines()) > 10]
    assert not long, f"{name}: code cells over 10 lines (cell, lines): {long}"
    assert "../" not in "".join(c.source for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("where", ["repository root", "elsewhere"])
def test_notebooks_run_from_any_working_directory(where, tmp_path):
    """Defaults name data by what it is (eksfold.site), not by a path relative to notebooks/."""
    cwd = PROJECT if where == "repository root" else tmp_path
    nb = execute("01_data.ipynb", tmp_path, cwd=cwd, limit=2, fetch_references=False)
    assert "2 of 2 targets name a PDB chain; 2 references present" in text_of(nb)


# ------------------------------------------------------------------ each notebook runs

def test_setup_check_local(small_db, tmp_path):
    nb = execute("00_setup_check.ipynb", tmp_path, mode="local", database=str(small_db))
    text = text_of(nb)
    assert "all required checks passed (local mode)" in text
    assert "cluster checks skipped" in text
    assert "jackhmmer" in text and "attn_core_inplace_cuda" in text


@pytest.mark.k8s
def test_setup_check_eks_mode_against_a_real_control_plane(small_db, tmp_path):
    """Mode "eks" reads nodes and pools, Kueue LocalQueues, the shared volume's claim and Jobs."""
    import yaml
    from kubernetes import client as kclient

    import k8s_cluster
    from cluster_validators import KUEUE_CRDS

    missing = k8s_cluster.missing_binaries()
    if missing:
        pytest.fail("Kubernetes control plane not built: missing " + ", ".join(missing)
                    + ". Run `make test-setup`.")
    cluster = k8s_cluster.Cluster(tmp_path / "k8s")
    try:
        cluster.start()
        crd = yaml.safe_load((KUEUE_CRDS / "kueue.x-k8s.io_localqueues.yaml").read_text())
        ext = kclient.ApiextensionsV1Api(cluster.api.client)
        ext.create_custom_resource_definition(crd)
        k8s_cluster.wait_until(lambda: any(
            c.type == "Established" and c.status == "True" for c in
            ext.read_custom_resource_definition(crd["metadata"]["name"]).status.conditions or []),
            30, "the LocalQueue CRD")
        for queue, cq in (("eksfold-cpu", "cpu"), ("eksfold-gpu", "gpu")):
            kclient.CustomObjectsApi(cluster.api.client).create_namespaced_custom_object(
                "kueue.x-k8s.io", "v1beta2", "eksfold", "localqueues",
                {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "LocalQueue",
                 "metadata": {"name": queue}, "spec": {"clusterQueue": cq}})
        nb = execute("00_setup_check.ipynb", tmp_path, mode="eks", database=str(small_db),
                     kubeconfig=str(cluster.kubeconfig))
    finally:
        cluster.stop()
    text = text_of(nb)
    assert "all required checks passed (eks mode)" in text
    for expected in ("v1.20, namespace eksfold", "pool=eksfold-infer gpu-class=large",
                     "pool=eksfold-align", "clusterQueue=gpu", "Bound, 1200Gi"):
        assert expected in text


def test_local_checks_name_what_is_missing(tmp_path):
    table = checks.local_checks(tmp_path / "absent.fasta", openfold=False)
    assert checks.problems(table) == [f"database/{tmp_path / 'absent.fasta'}: "
                                      "not found (make setup builds data/db)"]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def pdb_server(tmp_path):
    """A local HTTP server holding PDB-format entries `<pdb>.pdb` (from data/cameo2022)."""
    site = tmp_path / "site"
    site.mkdir()
    for ref in CAMEO2022.glob("structures/*.pdb"):
        shutil.copyfile(ref, site / f"{ref.name.split('.')[0]}.pdb")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{{pdb}}.pdb"
    server.shutdown()


def test_data_notebook_fetches_references_and_alignments_and_says_what_it_skipped(pdb_server, tmp_path):
    # OpenProteinSet's layout, locally: <pdbid>_<chain>/a3m/*.a3m
    opset = tmp_path / "openproteinset"
    (opset / "7pl4_A" / "a3m").mkdir(parents=True)
    (opset / "7pl4_A" / "a3m" / "uniref90_hits.a3m").write_text(
        ">7pl4_A\nGGLHVLLTATPVGLTLLIVLAALGFFYGKKR\n")
    refs, aln = tmp_path / "refs", tmp_path / "aln"
    nb = execute("01_data.ipynb", tmp_path, limit=3, references_dir=str(refs), pdb_url=pdb_server,
                 alignments_source=str(opset), alignments_dir=str(aln))
    text = text_of(nb)
    assert sorted(p.name for p in refs.iterdir()) == ["7lt7.A.pdb", "7pl4.A.pdb", "7v5f.A.pdb"]
    for p in refs.iterdir():  # the same chain as the shipped reference
        assert p.read_text().count(" CA ") == (CAMEO2022 / "structures" / p.name).read_text().count(" CA ")
    assert "7pl4.A: fetched" in text
    assert (aln / "7pl4_A" / "uniref90_hits.a3m").is_file() and "7v5f-a: none published" in text
    assert "SKIPPED weights download" in text and "UNTRAINED" in text  # weights=random
    assert "SKIPPED download" in text and "uniref90" in text            # databases: sizes only


def test_data_notebook_defaults_skip_remote_downloads_loudly(tmp_path):
    nb = execute("01_data.ipynb", tmp_path, limit=2)
    text = text_of(nb)
    assert "2 references present" in text and "fetched" not in text
    assert text.count("SKIPPED") == 3  # weights, precomputed alignments, databases


def test_alignments_notebook(aligned, run_params):
    assert "[align] 2/2 done" in text_of(aligned)
    # MSA depth per target, alignment runtime, the committed jackhmmer-vs-MMseqs2 benchmark
    assert len(images(aligned)) == 3
    assert "speedup_at_uniref90" in text_of(aligned)
    df = load_summary(run_params["run_root"])
    assert list(df.target) == TARGETS and (df.align_status == "done").all()
    assert (df.msa_depth >= 1).all() and (df.infer_status == "missing").all()


def test_inference_notebook_runs_the_monitor_and_shows_the_structure(inferred, run_params):
    text = text_of(inferred)
    assert any(WIDGET in o.get("data", {}) for o in outputs(inferred))  # the run monitor
    assert "[infer] 2/2 done" in text and "UNTRAINED" in text
    page = "".join(html_outputs(inferred))
    assert viz.THREEDMOL_MARKER in page and "7pl4-a (UNTRAINED weights)" in page
    assert len(images(inferred)) == 1  # pLDDT along the sequence


def test_run_summary_has_accuracy_columns(inferred, run_params):
    df = load_summary(run_params["run_root"])
    assert list(df.columns) == columns(("align", "infer", "score"))
    assert list(df.columns[-len(ACCURACY_COLUMNS):]) == ACCURACY_COLUMNS
    assert (df.infer_status == "done").all() and df.untrained.all()
    assert df[ACCURACY_COLUMNS].notna().all().all()
    # untrained weights: far from the experimental structures
    assert (df.tm_score < 0.3).all() and (df.lddt_ca < 0.3).all() and (df.rmsd > 3).all()


def test_analysis_notebook_via_report(rendered):
    nb = nbformat.read(str(rendered.with_suffix(".ipynb")), as_version=4)
    assert not outputs(nb, "error")
    text = text_of(nb)
    assert "2 targets scored against" in text and "0 target(s) not finished" in text
    page = rendered.read_text()
    assert '<div class="eks-weights untrained">UNTRAINED random weights' in page
    assert report.external_urls(page) == [] and page.count(viz.THREEDMOL_MARKER) == 1
    # 2x (pLDDT, PAE, MSA coverage), accuracy, MSA depth vs pLDDT, template coverage vs pLDDT,
    # runtime, memory, alignment
    assert len(embedded_pngs(page)) == 12
    assert f"<b>{TARGETS[0]} · UNTRAINED</b>" in page  # the 3D view's title


@pytest.mark.browser
def test_report_renders_offline_in_chromium(rendered, tmp_path):
    pngs = embedded_pngs(rendered.read_text())
    from test_run_report import canvases, drawn_fraction

    shot = chromium_screenshot(rendered, tmp_path / "report.png", window=(1000, 9000))
    boxes = canvases(shot, (480, 360), BACKGROUND)   # one view per target section
    assert len(boxes) == len(TARGETS), "3D viewer canvases missing: 3Dmol.js did not run"
    drawn = [drawn_fraction(shot, box, BACKGROUND) for box in boxes]
    assert min(drawn) > 0.01, f"viewer canvas (almost) empty: {drawn} drawn"
    visible = [find_image(shot, png) is not None for png in pngs]
    assert all(visible), f"plots visible in the screenshot: {visible}"


def test_report_of_a_run_made_by_the_cli(small_db, tmp_path):
    """`eksfold run ... --preset tiny` then `eksfold report RUN`, from another directory."""
    def eksfold(*args):
        res = subprocess.run([sys.executable, "-m", "eksfold.cli", *args], cwd=tmp_path,
                             capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-3000:]
        return res.stdout

    out = eksfold("run", str(CAMEO2022 / "targets.fasta"), "--root", "run", "--preset", "tiny",
                  "--limit", "1", "--shortest", "--uniref90", str(small_db))
    assert "UNTRAINED" in out
    df = pd.read_csv(tmp_path / "run" / "summary.csv")
    assert df[ACCURACY_COLUMNS].notna().all().all()  # references found beside the FASTA
    assert eksfold("report", "run").strip().endswith("report.html")
    page = (tmp_path / "run" / "report.html").read_text()
    assert "UNTRAINED random weights" in page and "1 targets scored against" in page
    assert report.external_urls(page) == []


def test_tradeoffs_notebook(small_db, tmp_path):
    nb = execute("04_tradeoffs.ipynb", tmp_path, lengths=[24, 48], align_lengths=[50, 100],
                 database=str(small_db), projection_n=20_000)
    text = text_of(nb)
    assert "mmseqs2, spot" in text and "critical:" in text       # the CAMEO-92 plans
    assert "no cluster within the pools' limits meets the deadline" in text
    assert "inference_s ~ length^" in text and "wall_s ~ length^" in text
    # runtime, memory, alignment runtime, one settings trade-off per committed profile, then
    # the planner's comparison, Gantt charts (streaming beside the classic window) and
    # cluster-size sweep
    assert len(images(nb)) == 8 and "profile cpu-2core" in text
    assert nb.metadata.papermill.parameters["lengths"] == [24, 48]
