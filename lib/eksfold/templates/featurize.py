"""Template features for one target with OpenFold's own featuriser, and a record of what it did.

The features are OpenFold's: ``data_pipeline.make_template_features`` over the hits of the
route's files, with a ``templates.TemplateHitFeaturizer`` built as ``run_pretrained_openfold.py``
builds it (mmCIF folder, ``max_template_date``, ``max_hits`` = the preset's
``data.predict.max_templates``, kalign, release dates, obsolete entries). What eksfold adds
around it, without changing which hits are used:

- a hit whose mmCIF file is missing is skipped with that reason (OpenFold would stop the whole
  target on the ``open``); an unparsable file is skipped by OpenFold itself, and its message is
  kept;
- why every other considered hit was not used (OpenFold's prefilter rules, the release date,
  OpenFold's errors and warnings), which templates were used and the top one's identity,
  coverage and release date, as the infer unit's metrics.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from .hits import describe, read_all

MAX_RECORDED = 50     # skipped hits kept in a unit record (PDB70 can return hundreds)


def make_featurizer(databases, templates_config, max_hits: int):
    """OpenFold's ``TemplateHitFeaturizer`` with a run's settings (its script's wiring)."""
    from openfold.data import templates

    kalign = shutil.which(templates_config.kalign) or templates_config.kalign
    return templates.TemplateHitFeaturizer(
        mmcif_dir=databases.template_mmcif_dir,
        max_template_date=templates_config.max_template_date,
        max_hits=max_hits,
        kalign_binary_path=kalign,
        release_dates_path=templates_config.release_dates,
        obsolete_pdbs_path=databases.obsolete_pdbs)


class Recorder:
    """Stands in for the featuriser in ``make_template_features``: drops hits without an mmCIF
    file, calls OpenFold's featuriser on the rest, and keeps what happened."""

    def __init__(self, featurizer, mmcif_dir: str):
        self.inner, self.mmcif_dir = featurizer, Path(mmcif_dir)
        self.skipped: list[dict] = []
        self.result = None
        self.hits: list = []

    def _code(self, hit) -> str:
        from openfold.data import templates

        code, _ = templates._get_pdb_id_and_chain(hit)
        # OpenFold's rule: an obsolete id is replaced when the release dates do not know it
        if code not in self.inner._release_dates and code in self.inner._obsolete_pdbs:
            code = self.inner._obsolete_pdbs[code]
        return code

    def get_templates(self, query_sequence, query_pdb_code, query_release_date, hits):
        kept = []
        for hit in hits:
            try:
                code = self._code(hit)
            except ValueError as exc:
                self.skipped.append({"hit": hit.name.split()[0], "rank": hit.index,
                                     "reason": str(exc)})
                continue
            if not (self.mmcif_dir / f"{code}.cif").is_file():
                self.skipped.append({"hit": hit.name.split()[0], "rank": hit.index,
                                     "reason": f"mmCIF file {code}.cif missing from the "
                                               "template mmCIF folder"})
                continue
            kept.append(hit)
        self.hits = kept
        self.result = self.inner.get_templates(query_sequence=query_sequence,
                                               query_pdb_code=query_pdb_code,
                                               query_release_date=query_release_date, hits=kept)
        return self.result

    def record(self, query: str) -> dict:
        """The unit's template metrics (templates used, top template, skipped hits)."""
        result = self.result
        used = ([n.decode() if isinstance(n, bytes) else str(n)
                 for n in result.features["template_domain_names"]] if result else [])
        skipped = list(self.skipped) + self._reasons(query, used, result)
        record = {"templates_used": len(used), "template_ids": used,
                  "templates_skipped": skipped[:MAX_RECORDED],
                  "templates_skipped_count": len(skipped),
                  "template_errors": list(result.errors) if result else [],
                  "template_warnings": list(result.warnings) if result else []}
        top = next((h for h in self._ranked() if self._name(h) in used), None)
        record.update({"top_template": None, "top_template_identity": None,
                       "top_template_coverage": None, "top_template_date": None})
        if top is not None:
            info = describe(top, query)
            record.update(top_template=self._name(top), top_template_identity=info["identity"],
                          top_template_coverage=info["coverage"],
                          top_template_date=release_date(self.mmcif_dir / f"{self._code(top)}.cif"))
        return record

    def _name(self, hit) -> str:
        from openfold.data import templates

        code, chain = templates._get_pdb_id_and_chain(hit)
        return f"{self._code(hit)}_{chain}" if code else hit.name.split()[0]

    def _ranked(self) -> list:
        return sorted(self.hits, key=lambda h: h.sum_probs, reverse=True)   # OpenFold's order

    def _reasons(self, query: str, used: list[str], result) -> list[dict]:
        """Why each considered hit that was not used was left out (OpenFold's rules), in
        OpenFold's order; a chain can be hit twice (two local alignments), so by rank."""
        import datetime
        from collections import Counter

        from openfold.data import templates

        cutoff = self.inner._max_template_date
        messages = list(result.errors) + list(result.warnings) if result else []
        unclaimed, reasons, taken = Counter(used), [], 0
        for hit in self._ranked():
            name = self._name(hit)
            try:
                templates._assess_hhsearch_hit(
                    hit=hit, hit_pdb_code=self._code(hit), query_sequence=query,
                    query_pdb_code=None, release_dates=self.inner._release_dates,
                    release_date_cutoff=cutoff)
            except templates.PrefilterError as exc:
                reasons.append((hit, f"{type(exc).__name__}: {exc}"))
                continue
            if unclaimed[name] > 0:           # the instance OpenFold used
                unclaimed[name] -= 1
                taken += 1
                continue
            if taken >= self.inner.max_hits:
                reasons.append((hit, f"not needed: {self.inner.max_hits} templates already found"))
                continue
            date = release_date(self.mmcif_dir / f"{self._code(hit)}.cif")
            said = next((m for m in messages if name in m[:60]), None)
            if said:
                reasons.append((hit, said[:300]))
            elif date and datetime.datetime.strptime(date, "%Y-%m-%d") > cutoff:
                reasons.append((hit, f"released {date}, after the max template date "
                                     f"{cutoff.date().isoformat()}"))
            else:
                reasons.append((hit, "not usable (see OpenFold's log)"))
        return [{"hit": self._name(h), "rank": h.index, "reason": why} for h, why in reasons]


def release_date(path: Path) -> str | None:
    """The first release date of an mmCIF entry (its oldest revision, as OpenFold reads it)."""
    import gemmi

    try:
        block = gemmi.cif.read(str(path)).sole_block()
    except (RuntimeError, ValueError, OSError):
        return None
    dates = [d for d in block.find_values("_pdbx_audit_revision_history.revision_date")]
    return min(gemmi.cif.as_string(d) for d in dates) if dates else None


def template_features(target, alignment_dir, databases, templates_config, route: str,
                      max_hits: int, featurizer=None) -> tuple[dict, dict]:
    """``(OpenFold template features, record)`` of one target's hits (TargetError: malformed)."""
    from openfold.data import data_pipeline

    featurizer = featurizer or make_featurizer(databases, templates_config, max_hits)
    hits = read_all(target.id, target.sequence, alignment_dir, route)
    recorder = Recorder(featurizer, databases.template_mmcif_dir)
    features = data_pipeline.make_template_features(target.sequence, hits, recorder)
    record = recorder.record(target.sequence)
    record.update(template_route=route, template_hits=sum(len(v) for v in hits.values()),
                  max_template_date=templates_config.max_template_date)
    return features, record


class TemplateInputs:
    """The infer stage's template input for a run: features + record per target."""

    def __init__(self, databases, templates_config, route: str, max_hits: int):
        self.databases, self.config, self.route = databases, templates_config, route
        self.max_hits = max_hits
        self.featurizer = make_featurizer(databases, templates_config, max_hits)
        self.record: dict = {}

    def features(self, target, alignment_dir) -> dict:
        features, self.record = template_features(
            target, alignment_dir, self.databases, self.config, self.route, self.max_hits,
            self.featurizer)
        return features


def for_run(config, of_config) -> TemplateInputs | None:
    """Template inputs of a run's infer units, or None when it uses no templates."""
    from .settings import plan

    decided = plan(config)
    if not decided.active:
        return None
    return TemplateInputs(config.databases, config.templates, decided.route,
                          int(of_config.data.predict.max_templates))


def openfold_view(alignment_dir: Path, scratch: Path) -> Path:
    """The folder OpenFold's data pipeline should read MSAs from: ``alignment_dir`` itself, or
    (when template hit files are there) links to its MSAs only, in ``scratch``. OpenFold 0.0.1
    reads every ``.sto`` as an MSA, hmmsearch's ``hmm_output.sto`` included; hits reach the
    features through :func:`template_features` instead."""
    from .hits import HIT_FILES

    alignment_dir = Path(alignment_dir)
    hits = [p for p in alignment_dir.iterdir() if p.name in HIT_FILES or p.suffix == ".hhr"]
    if not hits:
        return alignment_dir
    scratch.mkdir(parents=True, exist_ok=True)
    for path in alignment_dir.iterdir():
        if path not in hits and path.is_file():
            (scratch / path.name).symlink_to(path.resolve())
    return scratch
