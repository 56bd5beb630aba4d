"""Where this installation keeps its data, independent of the working directory.

``make setup`` builds the small sequence database and records its location in the virtual
environment (``<venv>/etc/eksfold/site.json``), so ``eksfold run`` and the notebooks find it
from any directory. Lookup order for each location: the environment variable, then the site
file, then nothing (callers say how to build or pass one).

=================== ======================== ==========================================
location            variable                 site.json key
=================== ======================== ==========================================
default database    ``EKSFOLD_DATABASE``     ``database`` (the 20,000-sequence FASTA)
target sets         ``EKSFOLD_DATA``         ``data`` (folder with cameo92/, cameo2022/)
runs of notebooks   ``EKSFOLD_RUNS``         ``runs`` (default ``~/eksfold-runs``)
3Dmol.js            ``EKSFOLD_3DMOL_JS``     ``threedmol_js`` (npm package, make setup)
template databases  ``EKSFOLD_TEMPLATE_DB``  ``template_db`` (stand-in, mk/templates.mk)
RNA database        ``EKSFOLD_RFAM_DB``      ``rfam_db`` (Rfam seed stand-in, mk/rna.mk)
=================== ======================== ==========================================

>>> target_file("cameo2022")          # doctest: +SKIP
PosixPath('/home/me/eksfold/data/cameo2022/targets.fasta')
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .contracts import DEFAULT_DATABASE_ENV

SITE_FILE = Path(sys.prefix) / "etc" / "eksfold" / "site.json"
DATA_ENV = "EKSFOLD_DATA"
BUILD_HINT = ("build it with `make setup` in the eksfold checkout, or pass --uniref90 FASTA "
              f"(or set ${DEFAULT_DATABASE_ENV})")


def site_config(path: Path = SITE_FILE) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def write_site_config(**entries: str) -> Path:
    """Record locations (absolute paths) for this environment; used by ``make setup``."""
    current = site_config()
    current.update({k: str(Path(v).resolve()) for k, v in entries.items()})
    SITE_FILE.parent.mkdir(parents=True, exist_ok=True)
    SITE_FILE.write_text(json.dumps(current, indent=2) + "\n")
    return SITE_FILE


def _located(env: str, key: str) -> Path | None:
    value = os.environ.get(env) or site_config().get(key)
    return Path(value).expanduser() if value else None


def default_database() -> Path | None:
    """The default jackhmmer database, if one is configured and exists."""
    path = _located(DEFAULT_DATABASE_ENV, "database")
    return path if path is not None and path.is_file() else None


def data_dir() -> Path | None:
    """The folder holding the packaged target sets (``cameo92/``, ``cameo2022/``)."""
    path = _located(DATA_ENV, "data")
    return path if path is not None and path.is_dir() else None


def target_set(name: str) -> Path:
    """``data/<name>/targets.fasta`` of this installation, from any working directory."""
    from .errors import ConfigError

    base = data_dir()
    if base is None or not (base / name / "targets.fasta").is_file():
        raise ConfigError(f"target set {name!r} not found: set ${DATA_ENV} to the eksfold "
                          "checkout's data/ folder, or run `make setup` there")
    return base / name / "targets.fasta"


def target_file(name_or_path: str | os.PathLike) -> Path:
    """A FASTA path (made absolute) or the name of a packaged target set (``cameo2022``)."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path.resolve()
    if os.sep not in str(name_or_path) and not path.suffix:
        return target_set(str(name_or_path))
    from .errors import ConfigError
    raise ConfigError(f"target file {name_or_path} not found")


def run_dir(name: str) -> str:
    """Where a named run goes when none is given: ``<runs>/<name>`` of this installation."""
    base = _located("EKSFOLD_RUNS", "runs") or Path("~/eksfold-runs").expanduser()
    return str(base / name)


def default_mmseqs_db(layout: str = "plain") -> str | None:
    """The MMseqs2 database ``make test-setup`` built (``site.json`` keys ``mmseqs_db`` for the
    plain layout, ``mmseqs_colabfold_db`` for ColabFold's), or None."""
    key = "mmseqs_db" if layout == "plain" else "mmseqs_colabfold_db"
    path = _located(f"EKSFOLD_{key.upper()}", key)
    return str(path) if path is not None else None


def default_rfam_db() -> Path | None:
    """The RNA database (``rfam`` role) ``make setup`` built (mk/rna.mk), if it exists."""
    path = _located("EKSFOLD_RFAM_DB", "rfam_db")
    return path if path is not None and path.is_file() else None


def threedmol_js() -> Path | None:
    return _located("EKSFOLD_3DMOL_JS", "threedmol_js")


if __name__ == "__main__":   # python -m eksfold.site database=PATH data=DIR
    print(write_site_config(**dict(arg.split("=", 1) for arg in sys.argv[1:])))
