"""Whether a run uses templates, with which search, and the checks made before any work.

OpenFold's template presets (``model_1``/``model_2`` and their ``_ptm`` variants, the
``initial_training``/``finetuning*`` checkpoints) were trained with templates; ``model_3..5`` and
``finetuning_no_templ*`` were not (``model.template.enabled`` in OpenFold's ``config.py``).
``--templates auto`` (the default) follows that, as OpenFold does, when template databases are
configured; without them a run goes on template-free (empty, masked templates, as OpenFold with
no ``.hhr`` in its alignment folder) and says so in its manifest. ``on`` demands them, ``off``
never searches.

=============== =================== =========================================================
route           database field      hits file (unit output of ``align``)
=============== =================== =========================================================
``hhsearch``    ``pdb70``           ``pdb70_hits.hhr`` (HHsearch of the MSA; AF2 monomer)
``hmmsearch``   ``pdb_seqres``      ``hmm_output.sto`` (hmmbuild + hmmsearch; AF 2.3/multimer)
=============== =================== =========================================================
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

ROUTES = {"hhsearch": "pdb70", "hmmsearch": "pdb_seqres"}
SITE_KEY = "template_db"     # site.json: the stand-in built by `make setup` (mk/templates.mk)


@dataclass(frozen=True)
class TemplatePlan:
    """What a run does about templates: ``active`` or not, and why."""

    active: bool
    reason: str
    route: str = "hhsearch"

    def as_dict(self) -> dict:
        return {"active": self.active, "reason": self.reason, "route": self.route}


def trained_with_templates(preset_name: str) -> bool:
    """Whether the preset was trained with templates: its model family's back end says."""
    from ..models import get_backend

    return get_backend(preset_name).uses_templates(None)


def resolve_route(templates, preset_name: str, root: str | None = None):
    """``templates`` with ``search`` ``auto`` replaced by the route of the run at ``root``
    when it has one (a resumed run keeps its route, as its date: :func:`pin_date`), else by
    the preset family's (the first of its back end's ``template_routes``: hhsearch for
    OpenFold, hmmsearch for OpenFold3, which reads no .hhr). Done before a run's manifest is
    written, so it records the route it searches and a run made before ``auto`` existed
    resumes unchanged."""
    import dataclasses

    from ..models import get_backend

    if templates.search != "auto":
        return templates
    route = get_backend(preset_name).template_routes[0]
    if root is not None:
        from ..storage import open_store

        try:
            recorded = open_store(root).read_json("manifest.json")["config"]["templates"]
            route = recorded["search"] if recorded["search"] in ROUTES else route
        except (FileNotFoundError, KeyError, TypeError, ValueError):
            pass
    return dataclasses.replace(templates, search=route)


def _missing(path: str | None, *suffixes: str) -> bool:
    if not path or "://" in path:
        return False
    return not any(Path(path + s).exists() for s in (suffixes or ("",)))


def plan(config) -> TemplatePlan:
    """Decide for a :class:`~eksfold.config.RunConfig`; ConfigError for an impossible request
    or a configured template database that does not exist (checked before any work)."""
    from ..models import get_backend

    tc, dbs = resolve_route(config.templates, config.infer.preset), config.databases
    if tc.enabled not in ("auto", "on", "off"):
        raise ConfigError(f"templates={tc.enabled!r}: expected auto, on or off")
    if tc.search not in ROUTES:
        raise ConfigError(f"template search {tc.search!r}: expected auto or one of "
                          f"{', '.join(ROUTES)}")
    try:
        datetime.date.fromisoformat(tc.max_template_date)
    except (TypeError, ValueError):
        raise ConfigError(f"max template date {tc.max_template_date!r} is not YYYY-MM-DD") from None
    if tc.enabled == "off":
        return TemplatePlan(False, "templates off (--no-templates)", tc.search)
    trained = trained_with_templates(config.infer.preset)
    backend = get_backend(config.infer.preset)
    if trained and tc.search not in backend.template_routes:
        if tc.enabled == "auto":   # e.g. an OpenFold3 run created before it read templates
            return TemplatePlan(False, f"preset {config.infer.preset} ({backend.family}) "
                                f"reads no {tc.search} hits", tc.search)
        raise ConfigError(f"preset {config.infer.preset} ({backend.family}) reads the hits of "
                          f"{' or '.join(backend.template_routes)} only, not {tc.search}'s: "
                          f"use --template-search {backend.template_routes[0]} (or auto)")
    field_ = ROUTES[tc.search]
    needed = {field_: getattr(dbs, field_), "template_mmcif_dir": dbs.template_mmcif_dir}
    if tc.enabled == "on" and not trained:
        raise ConfigError(f"preset {config.infer.preset} was trained without templates: "
                          "drop --templates (OpenFold ignores template features there)")
    if not all(needed.values()):
        lacking = ", ".join(k for k, v in needed.items() if not v)
        if tc.enabled == "on":
            raise ConfigError(f"--templates with --template-search {tc.search} needs {lacking}: "
                              "pass --pdb70/--pdb-seqres and --template-mmcif-dir (make setup "
                              "builds a small stand-in under data/db/templates)")
        return TemplatePlan(False, f"no template databases configured ({lacking})", tc.search)
    if not trained:
        return TemplatePlan(False, f"preset {config.infer.preset} was trained without templates",
                            tc.search)
    check_databases(dbs, tc)
    return TemplatePlan(True, f"{tc.search} against {field_}, max template date "
                              f"{tc.max_template_date}", tc.search)


def check_databases(dbs, tc) -> None:
    """Every configured template database must exist (a ConfigError names the first missing)."""
    problems = []
    if tc.search == "hhsearch" and _missing(dbs.pdb70, "_hhm.ffindex"):
        problems.append(f"PDB70 database {dbs.pdb70} not found (no {dbs.pdb70}_hhm.ffindex)")
    if tc.search == "hmmsearch" and _missing(dbs.pdb_seqres):
        problems.append(f"pdb_seqres file {dbs.pdb_seqres} not found")
    mmcif = dbs.template_mmcif_dir
    if mmcif and "://" not in mmcif and not (Path(mmcif).is_dir()
                                              and any(Path(mmcif).glob("*.cif"))):
        problems.append(f"template mmCIF folder {mmcif} not found or holds no .cif files")
    if dbs.obsolete_pdbs and _missing(dbs.obsolete_pdbs):
        problems.append(f"obsolete-entry list {dbs.obsolete_pdbs} not found")
    if tc.release_dates and _missing(tc.release_dates):
        problems.append(f"release-dates file {tc.release_dates} not found")
    if problems:
        raise ConfigError("; ".join(problems))


def default_template_databases() -> dict[str, str]:
    """The template databases `make setup` built (site.json ``template_db``), or nothing."""
    from ..site import _located
    from .standin import DONE, paths

    root = _located("EKSFOLD_TEMPLATE_DB", SITE_KEY)
    return paths(root) if root is not None and (root / DONE).is_file() else {}


def pin_date(templates, root: str):
    """``templates`` with its max template date fixed for the run at ``root``: a run resumed on
    a later day with the default date (today, as OpenFold's script) keeps the date its
    manifest records, so the resume is the same run; an explicit other date is kept as given
    (and refused by ``Run.create`` as other settings)."""
    import dataclasses

    from ..storage import open_store

    if templates.max_template_date != datetime.date.today().isoformat():
        return templates
    try:
        recorded = open_store(root).read_json("manifest.json")["config"]["templates"]
        return dataclasses.replace(templates, max_template_date=recorded["max_template_date"])
    except (FileNotFoundError, KeyError, TypeError, ValueError):
        return templates
