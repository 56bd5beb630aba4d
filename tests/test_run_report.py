"""`eksfold report RUN` on a real run of the eight demo targets, and `eksfold report RUN_A RUN_B`:
the header answers what ran and how good it is, code is hidden, every target has a section with
a drawn 3D canvas (headless Chromium, network off), the page stays under 5 MB; the comparison
report shows per-target deltas and renders the same way.

Runs use the tiny preset with random weights (UNTRAINED, labelled so): what is under test is the
report, not the science."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from eksfold import report, viz
from test_report import chromium_screenshot, embedded_pngs, find_image

PROJECT = Path(__file__).resolve().parents[1]
DEMO = PROJECT / "data" / "demo" / "targets.fasta"
BACKGROUND = (0xFF, 0xEF, 0xD5)   # the views' canvas colour: appears nowhere else
MAX_BYTES = 5 * 1024 ** 2


def eksfold(*args, cwd=None, timeout=1800):
    res = subprocess.run([sys.executable, "-m", "eksfold.cli", *args], capture_output=True,
                         text=True, timeout=timeout, cwd=cwd)
    return res


@pytest.fixture(scope="module")
def runs(small_db, tmp_path_factory):
    """Run A: the eight demo targets (random weights, offline). Run B: three of them with other
    random weights (seed 7), so the comparison has shared targets that differ."""
    base = tmp_path_factory.mktemp("reports")
    env_args = ["--preset", "tiny", "--uniref90", str(small_db), "--shortest"]
    a = eksfold("run", str(DEMO), "--root", str(base / "a"), "--weights", "random", *env_args)
    assert a.returncode == 0, a.stderr[-3000:]
    b = eksfold("run", str(DEMO), "--root", str(base / "b"), "--weights", "random:7",
                "--limit", "3", *env_args)
    assert b.returncode == 0, b.stderr[-3000:]
    return base / "a", base / "b"


@pytest.fixture(scope="module")
def page(runs):
    res = eksfold("report", str(runs[0]), "-p", "viewer_background=#{:02X}{:02X}{:02X}".format(*BACKGROUND))
    assert res.returncode == 0, res.stderr[-3000:]
    return runs[0] / "report.html"


@pytest.fixture(scope="module")
def comparison(runs):
    res = eksfold("report", str(runs[0]), str(runs[1]),
                  "-p", "viewer_background=#{:02X}{:02X}{:02X}".format(*BACKGROUND))
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip() == str(runs[0] / "compare.html")
    return runs[0] / "compare.html"


def code_visible(html: str) -> bool:
    """Whether the page has an input (code) area element (the CSS names the class anyway)."""
    return re.search(r'<div[^>]*class="[^"]*jp-InputArea-editor', html) is not None


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r"<script.*?</script>", "", html,
                                                            flags=re.S)))


def canvases(shot: np.ndarray, size, colour=BACKGROUND, tol=6):
    """Boxes of the 3D canvases (regions of the canvas colour whose extent is a view's
    `size`), top to bottom. The molecule splits a canvas's colour into pieces; the ring
    around it spans the whole canvas."""
    mask = np.all(np.abs(shot.astype(int) - colour) <= 2, axis=2)
    labels, _ = ndimage.label(mask)
    boxes = []
    for y, x in ndimage.find_objects(labels):
        if abs(x.stop - x.start - size[0]) <= tol and abs(y.stop - y.start - size[1]) <= tol:
            boxes.append((x.start, y.start, x.stop, y.stop))
    return sorted(boxes, key=lambda b: b[1])


def drawn_fraction(shot, box, colour=BACKGROUND) -> float:
    x0, y0, x1, y1 = box
    region = shot[y0:y1, x0:x1].astype(int)
    return float(np.any(np.abs(region - colour) > 30, axis=2).mean())


def test_header_answers_what_ran_and_how_good(page, runs):
    html = page.read_text()
    body = text(html)
    first = re.search(r'<div class="eks-weights untrained">(.*?)</div>', html)
    assert first and first.group(1).startswith("UNTRAINED random weights (asked for)")
    for fact in ("Targets 8 (8 predicted, 0 not finished)", "Preset tiny", "Weights random",
                 "UNTRAINED", "Device cpu", "Wall time", "mean pLDDT", "mean pTM",
                 "TM-score", "over 8 targets with a reference structure"):
        assert fact in body, fact
    assert "targets with homologues" in body
    df = pd.read_csv(runs[0] / "summary.csv")
    assert f"TM-score {df.tm_score.mean():.3f}" in body     # the figure is the run's own


def test_report_hides_code_has_sections_and_a_sortable_table(page):
    html = page.read_text()
    assert not code_visible(html) and "import pandas as pd" not in text(html)
    assert report.external_urls(html) == [] and html.count(viz.THREEDMOL_MARKER) == 1
    ids = re.findall(r'<div class="eks-target" id="target-([^"]+)">', html)
    assert len(ids) == 8
    assert html.count('class="eks-sortable"') >= 1 and "addEventListener('click'" in html
    body = text(html)
    assert html.count('alt="MSA coverage · ') == 8 and html.count('alt="pLDDT · ') == 8
    assert html.count('alt="PAE · ') == 8 and "Templates: this run searched no templates" in body
    # eight demo targets spanning less than 3x in length: no scaling exponent, and the page
    # says why
    from eksfold.target_files import read_fasta
    lengths = [t.length for t in read_fasta(DEMO)]
    lo, hi = min(lengths), max(lengths)
    assert hi / lo < 3
    assert f"scaling fits: lengths {lo}-{hi} span x{hi / lo:.1f} (a fit needs x3)" in body
    assert page.stat().st_size < MAX_BYTES


def test_show_code_keeps_the_code(runs, tmp_path):
    out = tmp_path / "with-code.html"
    res = eksfold("report", str(runs[1]), "--show-code", "--out", str(out))
    assert res.returncode == 0, res.stderr[-2000:]
    assert code_visible(out.read_text()) and "import pandas as pd" in text(out.read_text())


@pytest.mark.browser
def test_report_renders_a_3d_view_per_target(page, tmp_path):
    shot = chromium_screenshot(page, tmp_path / "report.png", window=(1100, 11000))
    boxes = canvases(shot, (480, 360))
    assert len(boxes) == 8, f"{len(boxes)} 3D canvases drawn, expected 8"
    fractions = [drawn_fraction(shot, b) for b in boxes]
    assert all(f > 0.01 for f in fractions), fractions
    # the first sections' figures (pLDDT, PAE, MSA coverage) are on the page as written
    for png in embedded_pngs(page.read_text())[:6]:
        assert find_image(shot, png) is not None


def test_comparison_has_deltas_for_shared_targets(comparison, runs):
    html = comparison.read_text()
    body = text(html)
    assert "3 shared targets" in body and not code_visible(html)
    assert "delta mean_plddt[b]" in body and "delta inference_s[b]" in body
    a = pd.read_csv(runs[0] / "summary.csv").set_index("target")
    b = pd.read_csv(runs[1] / "summary.csv").set_index("target")
    shared = b.index
    delta = (b.inference_s - a.loc[shared, "inference_s"]).mean()
    assert f"{delta:.2f}" in body        # the mean time delta as the runs' records give it
    per_target = b.inference_s - a.loc[shared, "inference_s"]
    assert all(f"{d:.2f}" in body for d in per_target)
    assert len(re.findall(r'<div class="eks-target" id="target-', html)) == 3
    assert len(embedded_pngs(html)) >= 1 and comparison.stat().st_size < MAX_BYTES
    assert report.external_urls(html) == []


@pytest.mark.browser
def test_comparison_renders_side_by_side_views(comparison, tmp_path):
    shot = chromium_screenshot(comparison, tmp_path / "compare.png", window=(1100, 5000))
    boxes = canvases(shot, (640, 280))     # two runs side by side, 320 x 280 each
    assert len(boxes) == 3, f"{len(boxes)} canvases"
    for x0, y0, x1, y1 in boxes:           # both halves drawn
        for half in ((x0, y0, x0 + 320, y1), (x0 + 320, y0, x1, y1)):
            assert drawn_fraction(shot, half) > 0.01


def test_comparison_of_one_run_is_refused(runs):
    res = eksfold("report", str(runs[0]), "--notebook", "x.ipynb", str(runs[1]))
    assert res.returncode != 0
