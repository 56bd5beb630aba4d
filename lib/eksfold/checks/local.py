"""Checks of this machine: tools, Python, OpenFold, device, database, offline 3D viewer."""
from __future__ import annotations

import os
import platform
import shutil
import sys
from pathlib import Path

from ..alignment.tools import tool_version as _tool_version
from .rows import _row, _table

# (tool, needed for, required?)
TOOLS = (("jackhmmer", "the align stage", True),
         ("hhblits", "alignments with --bfd/--uniclust30", False),
         ("nhmmer", "MSAs of RNA chains with --rfam (OpenFold3)", False),
         ("TMalign", "checking the accuracy metrics", False),
         ("kalign", "alignment benchmarks", False),
         ("chromium", "the report tests (headless browser)", False))


def _python_rows():
    in_venv = sys.prefix != sys.base_prefix
    from ..version import __file__ as pkg, __version__
    return [_row("python", "interpreter", "ok", f"{platform.python_version()} {sys.executable}"),
            _row("python", "virtual environment", "ok" if in_venv else "info",
                 sys.prefix if in_venv else "not in a venv (fine inside the worker/notebook image)"),
            _row("python", "eksfold", "ok", f"{__version__} at {Path(pkg).parent}")]


def _tool_rows():
    rows = []
    for tool, purpose, required in TOOLS:
        path = shutil.which(tool)
        if path:
            version = _tool_version([tool, "-h"]) if tool in ("jackhmmer", "hhblits") else None
            rows.append(_row("tools", tool, "ok", f"{path}" + (f" ({version})" if version else "")))
        else:
            rows.append(_row("tools", tool, "missing" if required else "optional",
                             f"not on PATH; needed for {purpose} (make setup installs it)"))
    return rows


def _model_rows():
    """Each registered model family's own installation checks, then the device."""
    from ..models import backend_class, family_names

    rows = [_row(*row) for family in family_names()
            for row in backend_class(family).setup_checks()]
    try:
        import torch
    except ImportError as exc:
        return rows + [_row("device", "torch", "missing", exc)]
    rows.append(_row("device", "torch", "ok", f"{torch.__version__}, {torch.get_num_threads()} threads"))
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            rows.append(_row("device", f"cuda:{i}", "ok",
                             f"{p.name}, {p.total_memory / 2**30:.0f} GiB, sm_{p.major}{p.minor}"))
    else:
        rows.append(_row("device", "cuda", "info",
                         "no GPU: inference runs on CPU (device='auto' picks it)"))
    return rows


def _machine_rows():
    mem = ""
    try:
        info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        mem = f", {int(info['MemTotal'].split()[0]) / 2**20:.1f} GiB RAM"
    except (OSError, KeyError, ValueError):
        pass
    return [_row("device", "cpu", "ok", f"{os.cpu_count()} cores{mem}")]


def _database_rows(database):
    if not database:
        from ..site import BUILD_HINT, default_database
        database = default_database()
        if database is None:
            return [_row("database", "sequence database", "missing", f"none configured: {BUILD_HINT}")]
    path = Path(database)
    if not path.exists():
        return [_row("database", str(path), "missing", "not found (make setup builds data/db)")]
    if path.is_file() and path.stat().st_size < 2**30:
        with path.open("rb") as fh:
            n = sum(chunk.count(b"\n>") for chunk in iter(lambda: fh.read(2**20), b""))
        with path.open("rb") as fh:
            n += fh.read(1) == b">"
        return [_row("database", str(path), "ok",
                     f"{path.stat().st_size / 2**20:.1f} MiB, {n} sequences")]
    return [_row("database", str(path), "ok", "present")]


def _viewer_rows():
    from ..errors import MissingDependencyError
    try:
        from ..views import threedmol_js_path
        return [_row("notebooks", "3Dmol.js (offline)", "ok", threedmol_js_path())]
    except MissingDependencyError as exc:
        return [_row("notebooks", "3Dmol.js (offline)", "missing", exc)]


def local_checks(database=None, openfold: bool = True):
    """Tools, Python environment, OpenFold, device and the sequence database on this machine.

    Parameters
    ----------
    database : str or path-like, optional
        A FASTA or database path to check (count sequences of files under 1 GiB).
    openfold : bool
        Import OpenFold and torch (a few seconds).

    Returns
    -------
    pandas.DataFrame
        ``area, check, status, detail``; ``status == "missing"`` rows need fixing.
    """
    rows = _python_rows() + _tool_rows()
    if openfold:
        rows += _model_rows()
    rows += _machine_rows() + _database_rows(database) + _viewer_rows()
    return _table(rows)
