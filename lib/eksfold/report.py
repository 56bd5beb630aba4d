"""Reports: an executed notebook rendered to one self-contained HTML file that opens offline.

Code cells are left out by default (the page reads as a report: header, tables, figures and
3D views); ``show_code=True`` keeps them. Two or more runs give a comparison report
(:func:`build_comparison`, ``compare.ipynb``) over the targets they share.

The page inlines everything it needs: plots are embedded PNGs, 3Dmol.js is inlined once in the
page head (copies a notebook inlined for itself are removed), and the CDN scripts of
nbconvert's template (require.js, MathJax, mermaid, widget manager) are left out.

>>> from eksfold.report import build_report
>>> build_report("runs/demo")                 # doctest: +SKIP
'runs/demo/report.html'

From the shell: ``eksfold report runs/demo [--out report.html] [--show-code] [-p name=value ...]``
and ``eksfold report RUN_A RUN_B ...`` (written to ``RUN_A/compare.html``).
"""
from __future__ import annotations

import copy
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

from .errors import EksfoldError

DEFAULT_NOTEBOOK = "analysis.ipynb"     # packaged with eksfold (eksfold.notebooks)
COMPARE_NOTEBOOK = "compare.ipynb"
REPORT_NAME = "report.html"
COMPARE_NAME = "compare.html"
# lab/index.html.j2 minus every block that loads from a CDN, plus 3Dmol.js inlined once.
TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{{ resources.eksfold_head_js }}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


def _strip_inlined_3dmol(nb):
    """Remove the copies of 3Dmol.js that cells inlined; the page head carries one."""
    from .views import THREEDMOL_MARKER

    pattern = re.compile(rf"<script {THREEDMOL_MARKER}=[^>]*>.*?</script>", re.S)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if isinstance(data.get("text/html"), str) and THREEDMOL_MARKER in data["text/html"]:
                data["text/html"] = pattern.sub("", data["text/html"])
    return nb


class _ExternalRefs(HTMLParser):
    """Collects URLs a browser would fetch: script/img/iframe src, link href."""

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        url = attrs.get("href") if tag == "link" else attrs.get("src")
        if tag in ("script", "img", "iframe", "link", "source", "embed") and url:
            if re.match(r"^([a-z][a-z0-9+.-]*:)?//", url, re.I) and not url.startswith("data:"):
                self.urls.append(url)


def external_urls(page: str) -> list:
    """URLs in ``page`` that a browser would load from the network (should be none)."""
    parser = _ExternalRefs()
    parser.feed(page)
    return parser.urls


def render_report(notebook, out_html, *, hide_input: bool = False) -> Path:
    """Render an executed notebook to a self-contained HTML file.

    Parameters
    ----------
    notebook : str, path-like or nbformat.NotebookNode
        The executed notebook (its outputs are rendered as they are).
    out_html : str or path-like
        Where to write the page.
    hide_input : bool
        Leave code cells out (narrative, tables, plots and views only).

    Returns
    -------
    pathlib.Path
        ``out_html``.

    Raises
    ------
    EksfoldError
        If the page would still load anything from the network.
    """
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    from .views import threedmol_script

    if isinstance(notebook, (str, Path)):
        nb = nbformat.read(str(notebook), as_version=4)
    else:
        nb = copy.deepcopy(notebook)
    exporter = HTMLExporter(template_name="lab", template_file="eksfold_report.html.j2",
                            extra_loaders=[jinja2.DictLoader({"eksfold_report.html.j2": TEMPLATE})],
                            embed_images=True, exclude_input=hide_input,
                            exclude_input_prompt=hide_input, exclude_output_prompt=hide_input)
    page, _ = exporter.from_notebook_node(_strip_inlined_3dmol(nb),
                                          resources={"eksfold_head_js": threedmol_script()})
    urls = external_urls(page)
    if urls:
        raise EksfoldError(f"report would load from the network: {urls[:5]}")
    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


def packaged_notebook(name: str) -> Path:
    """A notebook of the suite as installed with the package (a checkout or a wheel)."""
    from importlib.resources import files
    return Path(str(files("eksfold.notebooks") / name))


def build_report(run_root, out_html=None, params: dict | None = None, *, notebook=None,
                 kernel_name: str | None = None, hide_input: bool = True,
                 _name: str = REPORT_NAME, _params_override: dict | None = None) -> str:
    """Execute the analysis notebook for a run with papermill and render it to HTML.

    Parameters
    ----------
    run_root : str or path-like
        The run root (local path or ``s3://...``), passed as the notebook parameter
        ``run_root``.
    out_html : str or path-like, optional
        Local path of the page; default ``report.html`` in the run root (uploaded for S3
        roots). The executed notebook is kept beside it (``.ipynb``).
    params : dict, optional
        More papermill parameters for the notebook.
    notebook : str or path-like, optional
        Notebook to execute; default ``notebooks/analysis.ipynb``.
    kernel_name : str, optional
        Jupyter kernel; default the notebook's own.
    hide_input : bool
        Leave code cells out of the page (the default; ``False`` shows the code).

    Returns
    -------
    str
        Path or URI of the written page.

    Raises
    ------
    papermill.PapermillExecutionError
        A cell failed; it names the cell and carries the error.
    """
    import papermill

    from .storage import open_store, split_scheme

    notebook = Path(notebook) if notebook else packaged_notebook(DEFAULT_NOTEBOOK)
    if not notebook.is_file():
        raise EksfoldError(f"notebook {notebook} not found")
    root = _absolute(run_root)
    store = open_store(root)
    parameters = _params_override or {"run_root": root}
    with store.scratch("report") as tmp:
        page, executed = tmp / _name, tmp / _name.replace(".html", ".ipynb")
        papermill.execute_notebook(str(notebook), str(executed),
                                   parameters={**parameters, **(params or {})},
                                   kernel_name=kernel_name, progress_bar=False)
        render_report(executed, page, hide_input=hide_input)
        if out_html is not None:
            out = Path(out_html)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(page, out)
            shutil.copyfile(executed, out.with_suffix(".ipynb"))
            return str(out)
        store.put_file(page, page.name)
        store.put_file(executed, executed.name)
        return store.uri(page.name)


def _absolute(run_root) -> str:
    """A run root as the kernel sees it: local paths made absolute (it may run elsewhere)."""
    from .storage import split_scheme

    root = str(run_root)
    if split_scheme(root)[0] == "file":
        root = str(Path(split_scheme(root)[1]).resolve())
    return root


def build_comparison(run_roots, out_html=None, params: dict | None = None, *,
                     kernel_name: str | None = None, hide_input: bool = True) -> str:
    """Execute ``compare.ipynb`` over two or more runs and render it to HTML.

    The page goes to ``out_html``, or ``compare.html`` in the first run's root (nothing is
    written outside a run root). Raises :class:`EksfoldError` for fewer than two runs.
    """
    roots = [_absolute(r) for r in run_roots]
    if len(roots) < 2:
        raise EksfoldError("a comparison report needs two or more runs")
    return build_report(roots[0], out_html, params, notebook=packaged_notebook(COMPARE_NOTEBOOK),
                        kernel_name=kernel_name, hide_input=hide_input, _name=COMPARE_NAME,
                        _params_override={"run_roots": roots})
