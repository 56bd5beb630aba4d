"""Shared fixtures. Everything a test needs is installed by `make setup`; a missing piece fails
loudly with that hint instead of skipping."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from s3_server import s3_as, s3_env, s3_server, store  # noqa: F401  (S3 server, Store per back end)

PROJECT = Path(__file__).resolve().parents[1]
# benchmarks/ (the research benchmarks, not installed) is imported from the checkout
if str(PROJECT) not in sys.path:
    sys.path.append(str(PROJECT))
CAMEO92 = PROJECT / "data" / "cameo92" / "targets.fasta"
HMMER_TUTORIAL = Path("/usr/share/doc/hmmer/tutorial")


def require(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.fail(f"{what} missing at {path}: run `make setup` first")
    return path


@pytest.fixture(scope="session")
def small_db() -> Path:
    """The real 20,000-sequence UniProt FASTA built by `make setup` (tools/build_db.sh)."""
    return require(PROJECT / "data" / "db" / "uniprot20k.fasta", "sequence database")


@pytest.fixture(scope="session")
def globins() -> tuple[Path, Path]:
    """HMMER's tutorial data: (HBB_HUMAN query, globins45 database)."""
    return (require(HMMER_TUTORIAL / "HBB_HUMAN", "hmmer-doc tutorial"),
            require(HMMER_TUTORIAL / "globins45.fa", "hmmer-doc tutorial"))


@pytest.fixture(scope="session")
def cameo_fasta() -> Path:
    return require(CAMEO92, "CAMEO-92 target set")


@pytest.fixture
def worker_env(monkeypatch):
    """Subprocess workers must import this checkout's package."""
    monkeypatch.setenv("PYTHONPATH", str(PROJECT / "lib") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return sys.executable


def random_tiny_model(seed: int):
    """A tiny-preset AlphaFold with EVERY parameter random: AF2 zero-initialises its last layers,
    which would collapse all coordinates and make structure comparisons trivial."""
    import torch

    from eksfold.models.openfold2.compat import prepare
    from eksfold.models.openfold2.presets import build_openfold_config, get_preset

    prepare()
    from openfold.model.model import AlphaFold

    torch.manual_seed(seed)
    model = AlphaFold(build_openfold_config(get_preset("tiny")))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model


@pytest.fixture(scope="session")
def template_db() -> Path:
    """The stand-in template databases `make setup` builds (mk/templates.mk) from the CAMEO 2022
    reference structures; $EKSFOLD_TEMPLATE_DB points elsewhere (a worktree's own build)."""
    root = Path(os.environ.get("EKSFOLD_TEMPLATE_DB") or PROJECT / "data" / "db" / "templates")
    return require(root / ".done", "template databases").parent


@pytest.fixture(scope="module")
def of3():
    """OpenFold3's environment (.venv-of3); its absence fails with the set-up hint (no skip)."""
    from eksfold.models.openfold3.environment import of3_python

    try:
        return of3_python()
    except ImportError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def of3_checkpoint(tmp_path_factory) -> Path:
    """The seeded random OpenFold3 checkpoint of ``--weights random:3`` (reduced, UNTRAINED),
    made once per session by the real code path. A run with a fresh ``$EKSFOLD_CACHE`` would
    build it again (~14 s of a 2-core machine)."""
    import subprocess

    from eksfold.models.openfold3.environment import of3_env, of3_python

    try:
        python = of3_python()
    except ImportError as exc:
        pytest.fail(str(exc))
    root = tmp_path_factory.mktemp("of3-checkpoint")
    path = root / "random-reduced-3.pt"
    proc = subprocess.run([python, "-m", "eksfold.models.openfold3.checkpoint", str(path),
                           "--seed", "3", "--configuration", "reduced"],
                          capture_output=True, text=True, env=of3_env(root / "work"),
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return path


@pytest.fixture(scope="session")
def of3_cache(of3_checkpoint):
    """``of3_cache(folder)``: ``folder`` as an ``$EKSFOLD_CACHE`` that already holds
    :func:`of3_checkpoint` (hard-linked, with its label, where the OpenFold3 folder looks for
    ``random:3``); the runner keeps it because its label matches (``make_random_checkpoint``)."""
    import shutil

    from eksfold.models.openfold3.checkpoint import label_path

    def seed(cache) -> Path:
        dest = Path(cache) / "openfold3"
        dest.mkdir(parents=True, exist_ok=True)
        for src in (of3_checkpoint, label_path(of3_checkpoint)):
            if not (dest / src.name).exists():
                try:
                    os.link(src, dest / src.name)
                except OSError:       # another file system
                    shutil.copy2(src, dest / src.name)
        return Path(cache)
    return seed
