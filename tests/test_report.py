"""eksfold.report: `eksfold report` executes a notebook (papermill) and renders one HTML file
that a real headless Chromium opens with networking off: the 3D viewer draws a molecule and the
plots show. The notebook is tests/data/report_test.ipynb (viz calls on a synthetic summary
table and real CAMEO references) until notebooks/analysis.ipynb exists."""
import base64
import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eksfold import cli, report, viz

HERE = Path(__file__).parent
NOTEBOOK = HERE / "data" / "report_test.ipynb"
BACKGROUND = (0xFF, 0xEF, 0xD5)  # the test viewer's canvas colour: appears nowhere else
VIEWER = (480, 360)              # its size in the notebook
WINDOW = (1000, 3800)            # tall enough for the whole page at 1:1


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Run the CLI once: `eksfold report ROOT --notebook ... -p structures=... -p background=...`."""
    root = tmp_path_factory.mktemp("run")
    code = cli.main(["report", str(root), "--notebook", str(NOTEBOOK),
                     "-p", f"structures={HERE / 'data' / 'structures'}",
                     "-p", "background=#{:02X}{:02X}{:02X}".format(*BACKGROUND)])
    assert code == 0
    return root / "report.html"


def chromium_screenshot(page: Path, out: Path, window=WINDOW) -> np.ndarray:
    """Screenshot of `page` by headless Chromium with no network; RGB array."""
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail("chromium is missing: run `make setup` (APT_PACKAGES in mk/viz.mk)")
    cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--no-first-run",
           f"--user-data-dir={out.parent / (out.stem + '-profile')}",
           "--host-resolver-rules=MAP * ~NOTFOUND",       # no name resolves
           "--proxy-server=http://127.0.0.1:9",           # and no connection goes anywhere
           "--hide-scrollbars", f"--window-size={window[0]},{window[1]}",
           "--virtual-time-budget=10000", f"--screenshot={out}", page.as_uri()]
    # An empty network namespace where we may make one (root or user namespaces).
    if shutil.which("unshare") and subprocess.run(["unshare", "--net", "true"],
                                                  capture_output=True).returncode == 0:
        cmd = ["unshare", "--net", *cmd]
    subprocess.run(cmd, capture_output=True, timeout=120, check=True)
    return np.asarray(Image.open(out).convert("RGB"))


def region_of(shot: np.ndarray, colour, tolerance=2):
    """Bounding box (x0, y0, x1, y1) of the pixels of one colour, or None."""
    match = np.all(np.abs(shot.astype(int) - colour) <= tolerance, axis=2)
    if match.sum() < 1000:
        return None
    ys, xs = np.nonzero(match)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def embedded_pngs(page: str) -> list:
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(b))).convert("RGB"))
            for b in re.findall(r'<img [^>]*src="data:image/png;base64,([^"]+)"', page)]


def find_image(shot: np.ndarray, image: np.ndarray):
    """Top-left corner where `image` appears pixel for pixel in `shot`, or None."""
    h, w, _ = image.shape
    row = image[h // 2].tobytes()
    for y in range(h // 2, shot.shape[0] - (h - h // 2) + 1):
        line = shot[y].tobytes()
        start = line.find(row)
        while start >= 0 and start % 3:  # a match must start on a pixel boundary
            start = line.find(row, start + 1)
        if start >= 0:
            top, left = y - h // 2, start // 3
            if np.array_equal(shot[top:top + h, left:left + w], image):
                return left, top
    return None


def test_report_is_self_contained(rendered):
    page = rendered.read_text()
    assert report.external_urls(page) == []
    assert "<script src=" not in page and "<link " not in page
    assert page.count(viz.THREEDMOL_MARKER) == 1  # inlined once, in the head
    assert page.index(viz.THREEDMOL_MARKER) < page.index("<body")
    pngs = embedded_pngs(page)
    assert len(pngs) == 4  # runtime, memory, accuracy, PAE
    assert all(img.shape[0] > 200 and (img < 250).any() for img in pngs)
    assert rendered.with_suffix(".ipynb").exists()  # the executed notebook is kept beside


@pytest.mark.browser
def test_report_renders_offline_in_chromium(rendered, tmp_path):
    shot = chromium_screenshot(rendered, tmp_path / "report.png")
    box = region_of(shot, BACKGROUND)
    assert box is not None, "no 3D viewer canvas on the page: 3Dmol.js did not run"
    x0, y0, x1, y1 = box
    assert abs((x1 - x0) - VIEWER[0]) <= 4 and abs((y1 - y0) - VIEWER[1]) <= 4
    canvas = shot[y0:y1, x0:x1].astype(int)
    drawn = np.any(np.abs(canvas - BACKGROUND) > 30, axis=2).mean()
    assert drawn > 0.03, f"viewer canvas is (almost) empty: {drawn:.1%} drawn"
    # Every plot is on the page, pixel for pixel as matplotlib wrote it.
    pngs = embedded_pngs(rendered.read_text())
    assert len(pngs) == 4
    for i, png in enumerate(pngs):
        assert find_image(shot, png) is not None, f"plot {i} not visible in the screenshot"


@pytest.mark.browser
def test_viewer_stays_empty_without_the_inlined_library(rendered, tmp_path):
    """Control: the same page minus inlined 3Dmol.js (py3Dmol falls back to its CDN, which is
    unreachable) draws no viewer, so the test above can tell the difference."""
    page = re.sub(rf"<script {viz.THREEDMOL_MARKER}=.*?</script>", "", rendered.read_text(),
                  flags=re.S)
    broken = tmp_path / "no3dmol.html"
    broken.write_text(page)
    shot = chromium_screenshot(broken, tmp_path / "no3dmol.png", window=(1000, 2000))
    assert region_of(shot, BACKGROUND) is None
    assert find_image(shot, embedded_pngs(page)[0]) is not None  # the rest of the page did render


def test_render_report_keeps_one_copy_of_3dmol(tmp_path):
    """Cells that inlined the library (several, after re-runs) leave one copy in the page."""
    import nbformat

    script = viz.threedmol_script()
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("viz.offline_3dmol()") for _ in range(2)])
    for cell in nb.cells:
        cell.outputs = [nbformat.v4.new_output("display_data",
                                               data={"text/html": script + "<p>kept</p>"})]
    page = report.render_report(nb, tmp_path / "r.html").read_text()
    assert page.count(viz.THREEDMOL_MARKER) == 1 and page.count("<p>kept</p>") == 2


def test_external_urls():
    page = ('<script src="https://cdn.example/x.js"></script><script src="local.js"></script>'
            '<link rel="stylesheet" href="//fonts.example/a.css"><a href="https://ok.example">'
            '<img src="data:image/png;base64,AAAA"><img src="http://img.example/p.png">')
    assert report.external_urls(page) == ["https://cdn.example/x.js", "//fonts.example/a.css",
                                          "http://img.example/p.png"]


def test_cli_parameters():
    from eksfold.cli.report import _parse_param
    assert _parse_param("n=3") == ("n", 3)
    assert _parse_param("name=7tgi.B") == ("name", "7tgi.B")
    assert _parse_param("ids=[1, 2]") == ("ids", [1, 2])
    with pytest.raises(Exception, match="name=value"):
        _parse_param("novalue")


def test_missing_notebook_is_a_clear_error(tmp_path):
    with pytest.raises(report.EksfoldError, match="not found"):
        report.build_report(tmp_path, notebook=tmp_path / "absent.ipynb")
