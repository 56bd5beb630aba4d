"""The interactive path: JupyterLab on 127.0.0.1 with the project's kernel, driven by Playwright in
Debian's Chromium (never a downloaded browser). A copy of notebooks/03_inference.ipynb runs all
its cells; the run monitor (ipywidgets progress bars) and a 3D viewer must render in the page."""
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import papermill
import pytest

pytestmark = pytest.mark.browser

PROJECT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
NOTEBOOK = "03_inference.ipynb"
RUN_TIMEOUT_S = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path, small_db):
    """JupyterLab serving a temp root that holds a parameterised copy of the inference notebook."""
    root = tmp_path / "lab"
    root.mkdir()
    papermill.execute_notebook(
        str(PROJECT / "notebooks" / NOTEBOOK), str(root / NOTEBOOK), prepare_only=True,
        parameters={"targets": "cameo2022",
                    "database": str(small_db), "run_root": str(tmp_path / "run"),
                    "target_ids": ["7pl4-a"], "limit": None, "progress": "widget"})
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "jconfig"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "jruntime"), "JUPYTERLAB_SETTINGS_DIR":
           str(tmp_path / "jsettings"), "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "jworkspaces")}
    log = (tmp_path / "lab.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
         f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--ServerApp.port_retries=0", "--allow-root", "--LabApp.expose_app_in_browser=True",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         "--MappingKernelManager.default_kernel_name=python3"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"JupyterLab did not start:\n{(tmp_path / 'lab.log').read_text()[-3000:]}")
            time.sleep(0.5)
    yield {"url": f"{base}/lab/tree/{NOTEBOOK}?token={token}", "run": tmp_path / "run"}
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def scroll_to_output(page, selector: str) -> None:
    """Bring the cell whose output holds `selector` on screen the way a user scrolling would:
    JupyterLab lays out only the cells in view (windowing), so off-screen outputs have no size."""
    index = page.evaluate("""sel => {
        const cells = window.jupyterapp.shell.currentWidget.content.widgets;
        return cells.findIndex(c => c.node.querySelector(sel) !== null);
    }""", selector)
    assert index >= 0, f"no cell output matches {selector}"
    page.evaluate("""async i => {
        const nb = window.jupyterapp.shell.currentWidget.content;
        nb.activeCellIndex = i;
        await nb.scrollToItem(i, "start");
    }""", index)
    page.wait_for_timeout(500)


def canvas_pixels(png: bytes) -> np.ndarray:
    import io

    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def test_notebook_runs_in_jupyterlab_with_monitor_and_3d_view(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is missing: run `make setup` (APT_PACKAGES in mk/viz.mk)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update",
                  "--no-first-run",
                  # offline: only the local server resolves (3Dmol.js must come inlined)
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            console = []
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.goto(lab["url"])
            page.wait_for_function(
                """() => {
                  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                  return w && w.sessionContext && w.sessionContext.isReady &&
                    w.sessionContext.session.kernel.connectionStatus === 'connected' &&
                    w.sessionContext.session.kernel.status === 'idle';
                }""", timeout=120_000)
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            # Done when the kernel is idle and every code cell has an execution count.
            state = """() => {
                const w = window.jupyterapp.shell.currentWidget;
                const cells = Array.from(w.content.model.cells).filter(c => c.type === 'code');
                return {kernel: w.sessionContext.session.kernel.status,
                        counts: cells.map(c => c.executionCount)};
            }"""
            deadline = time.monotonic() + RUN_TIMEOUT_S
            while True:
                st = page.evaluate(state)
                if st["kernel"] == "idle" and all(st["counts"]):
                    break
                if time.monotonic() > deadline:
                    page.screenshot(path=str(tmp_path / "timeout.png"))
                    pytest.fail(f"notebook did not finish in {RUN_TIMEOUT_S}s: {st}; "
                                f"console: {console[-20:]}")
                page.wait_for_timeout(1000)
            outputs = page.evaluate(
                """() => Array.from(window.jupyterapp.shell.currentWidget.content.model.cells)
                     .filter(c => c.type === 'code').map(c => c.toJSON().outputs)""")
            errors = [o for cell in outputs for o in cell if o["output_type"] == "error"]
            assert not errors, f"cells failed: {[(e['ename'], e['evalue']) for e in errors]}"

            # The run monitor: one ipywidgets progress bar per stage (align, infer, score: the
            # CAMEO 2022 targets have references), full at the end.
            scroll_to_output(page, ".widget-hprogress")
            bars = page.locator(".jp-OutputArea .widget-hprogress")
            assert bars.count() == 3, f"{bars.count()} progress widgets rendered"
            for i in range(3):
                assert bars.nth(i).is_visible()
                bar = bars.nth(i).locator(".progress-bar")
                width = bar.evaluate("e => e.getBoundingClientRect().width")
                full = bars.nth(i).locator(".progress").evaluate("e => e.getBoundingClientRect().width")
                assert full > 0 and width >= 0.95 * full, f"stage bar {i} at {width}/{full}"
            monitor = page.locator(".jp-OutputArea table.eksfold-monitor")
            assert "done" in monitor.inner_text() and "7pl4-a" in monitor.inner_text()

            # The 3D viewer: a WebGL canvas with a drawn molecule (not only background).
            scroll_to_output(page, "div[id^='3dmolviewer']")
            viewer = page.locator(".jp-OutputArea div[id^='3dmolviewer']").first
            canvas = viewer.locator("canvas")
            page.wait_for_function("c => c.width > 0 && c.height > 0", arg=canvas.element_handle(),
                                   timeout=20_000)  # 3Dmol.js sizes it once it is on screen
            page.wait_for_timeout(1000)
            pixels = canvas_pixels(canvas.screenshot(path=str(tmp_path / "viewer.png")))
            drawn = np.any(np.abs(pixels - 255) > 30, axis=2).mean()
            assert drawn > 0.01, f"3D viewer canvas is (almost) empty: {drawn:.1%} drawn"
            page.screenshot(path=str(tmp_path / "lab.png"))
        finally:
            browser.close()
    assert (lab["run"] / "summary.csv").exists()
