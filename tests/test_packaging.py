"""eksfold works as an installed package, not only from this checkout (an editable install).

A wheel is built from the checkout and installed (non-editable) into a fresh virtual
environment whose only other packages are the project's pinned dependencies (the .venv's
site-packages, added as a plain path so its editable eksfold is NOT visible). From a folder
outside the repository, `eksfold --help` works, the packaged notebooks and profiles are found
through importlib.resources, and the tiny pipeline folds a target.
"""
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import PROJECT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp / "dist"), str(PROJECT)], check=True)
    (wheel,) = (tmp / "dist").glob("eksfold-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    purelib = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # the dependencies, but not the checkout's editable eksfold (its .pth hook is not run)
    Path(purelib, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps",
                    "--no-index", "-q", str(wheel)], check=True)
    return py, venv


def run_in(py, args, cwd, env=None, timeout=600):
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    return subprocess.run([str(py), *args], cwd=cwd, capture_output=True, text=True,
                          env={**clean, **(env or {})}, timeout=timeout)


def test_installed_wheel_is_not_the_checkout(installed, tmp_path):
    py, venv = installed
    res = run_in(py, ["-c", "import eksfold, json; from importlib.resources import files;"
                      "print(json.dumps([eksfold.__file__,"
                      " (files('eksfold.notebooks') / 'analysis.ipynb').is_file(),"
                      " (files('eksfold.profiles') / 'README.md').is_file()]))"], tmp_path)
    assert res.returncode == 0, res.stderr
    path, notebook, profiles = json.loads(res.stdout)
    assert str(venv) in path and str(PROJECT / "lib") not in path
    assert notebook and profiles
    assert run_in(py, ["-m", "eksfold.cli", "--help"], tmp_path).returncode == 0
    assert "run" in run_in(venv / "bin" / "eksfold", ["--help"], tmp_path).stdout


def test_installed_wheel_folds_from_another_directory(installed, tmp_path, small_db):
    py, venv = installed
    fasta = tmp_path / "one.fasta"
    fasta.write_text(">solo\nMKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDG\n")
    # no database configured in this environment: a clear message says how to get one
    res = run_in(venv / "bin" / "eksfold", ["run", str(fasta), "--root", str(tmp_path / "r0"),
                                            "--preset", "tiny", "--stages", "align"], tmp_path)
    assert res.returncode == 1 and "make setup" in res.stdout + res.stderr
    res = run_in(venv / "bin" / "eksfold", ["run", str(fasta), "--root", str(tmp_path / "r1"),
                                            "--preset", "tiny"], tmp_path,
                 env={"EKSFOLD_DATABASE": str(small_db)})
    assert res.returncode == 0, res.stderr[-3000:]
    record = json.loads((tmp_path / "r1" / "targets" / "solo" / "infer" / "metrics.json").read_text())
    assert record["status"] == "ok" and record["metrics"]["untrained"]
