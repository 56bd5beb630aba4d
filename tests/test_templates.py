"""Templates (issue 20): the stand-in databases, HHsearch/hmmsearch in the align stage, OpenFold's
template featuriser, and the faults around them. Real hhsearch, hmmbuild/hmmsearch, kalign and
OpenFold code on the stand-in built from the CAMEO 2022 reference structures."""
import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from eksfold.config import AlignConfig, DatabaseConfig, InferConfig, RunConfig, TemplateConfig
from eksfold.errors import ConfigError, TargetError
from eksfold.models.openfold2.compat import prepare
from eksfold.models.openfold2.presets import build_openfold_config, get_preset
from eksfold.stages.align import align_target
from eksfold.target_files import read_fasta
from eksfold.templates import featurize, standin
from eksfold.templates.hits import read_hits

DATA = Path(__file__).resolve().parents[1] / "data"
CAMEO = DATA / "cameo2022"
# the sets the stand-in is built from (mk/templates.mk): CAMEO 2022, the demo targets and the
# demo targets' earlier homologues
SETS = (CAMEO, DATA / "demo", DATA / "demo" / "templates")
META = {row["name"]: row for d in SETS
        for row in csv.DictReader(open(d / "metadata.tsv"), delimiter="\t")}
TARGETS = {t.id: t for d in SETS for t in read_fasta(d / "targets.fasta")}


def dbs(template_db, small_db=None, **changes) -> DatabaseConfig:
    return DatabaseConfig(uniref90=str(small_db) if small_db else None,
                          **{**standin.paths(template_db), **changes})


def features_for(target, aln, databases, route="hhsearch", **template_options):
    prepare()
    tc = TemplateConfig(search=route, **template_options)
    of = build_openfold_config(get_preset("tiny"))
    return featurize.template_features(target, aln, databases, tc, route,
                                       of.data.predict.max_templates)


@pytest.fixture(scope="module")
def aligned(small_db, template_db, tmp_path_factory):
    """7snc-a and 7sao-a (97 % identical CAMEO chains) aligned with jackhmmer, hits of both routes."""
    out = {}
    for tid in ("7snc-a", "7sao-a"):
        for route in ("hhsearch", "hmmsearch"):
            d = tmp_path_factory.mktemp(f"{tid}-{route}") / "align"
            m = align_target(TARGETS[tid], dbs(template_db, small_db), AlignConfig(cpus=2), d,
                             templates=TemplateConfig(search=route, enabled="on"))
            out[tid, route] = (d, m)
    return out


def test_standin_entries_parse_with_openfold_and_carry_real_release_dates(template_db):
    prepare()
    from openfold.data import mmcif_parsing, parsers

    cifs = sorted((template_db / "pdb_mmcif" / "mmcif_files").glob("*.cif"))
    assert len(cifs) == len(META) == 25
    for path in cifs:
        parsed = mmcif_parsing.parse(file_id=path.stem, mmcif_string=path.read_text())
        obj = parsed.mmcif_object
        assert obj is not None, parsed.errors
        (chain, seqres), = obj.chain_to_seqres.items()
        key = f"{path.stem}.{chain}"
        assert obj.header["release_date"] == META[key]["release_date"]
        assert seqres == TARGETS[f"{path.stem}-{chain.lower()}"].sequence
        observed = sum(not r.is_missing for r in obj.seqres_to_structure[chain].values())
        assert observed == int(META[key]["observed_len"])
    seqs, descs = parsers.parse_fasta((template_db / "pdb_seqres" / "pdb_seqres.txt").read_text())
    assert len(seqs) == 25 and all("mol:protein length:" in d for d in descs)
    dates = json.loads((template_db / "pdb_mmcif" / "release_dates.json").read_text())
    assert dates["7sao"] == {"release_date": "2022-08-03"}


@pytest.mark.parametrize("route, hit_file", [("hhsearch", "pdb70_hits.hhr"),
                                             ("hmmsearch", "hmm_output.sto")])
def test_template_search_finds_the_homologue_as_a_unit_output(aligned, route, hit_file):
    d, m = aligned["7snc-a", route]
    assert (d / hit_file).is_file() and (d / "uniref90_hits.sto").is_file()
    assert m["template_search"] == route and m["template_msa"] == "uniref90_hits.sto"
    assert m["template_hits"] >= 2 and m["template_search_wall_s"] > 0
    assert [t["tool"] for t in m["template_tools"]] == (
        ["hhsearch"] if route == "hhsearch" else ["hmmbuild", "hmmsearch"])
    names = [h.name.split()[0] for h in read_hits("7snc-a", TARGETS["7snc-a"].sequence, d / hit_file)]
    assert names[:2] in (["7snc_A", "7sao_A"], ["7sao_A", "7snc_A"])
    # the hit file is not an MSA: depth and the query check ignore it
    assert m["msa_depth"] >= 1


def test_date_cutoff_excludes_each_targets_own_structure(template_db, tmp_path):
    """CAMEO's blind setting: templates up to the submission date; the target's own entry is
    released days later. With OpenFold's release-dates file the date rule comes first."""
    from eksfold.templates.search import HHSearch

    search = HHSearch(standin.paths(template_db)["pdb70"], cpus=2)
    leaked = []
    for key, row in META.items():
        target = TARGETS[key.replace(".", "-").lower()]
        aln = tmp_path / target.id
        aln.mkdir()
        query = aln / "q.a3m"
        query.write_text(f">{target.id}\n{target.sequence}\n")
        search.run(query, aln / "pdb70_hits.hhr")
        own = f"{target.pdb_id}_{target.chain}"
        feats, rec = features_for(target, aln, dbs(template_db),
                                  max_template_date=row["submission_date"],
                                  release_dates=standin.release_dates_path(template_db))
        own_skips = [s for s in rec["templates_skipped"] if s["hit"] == own and s["rank"] == 1]
        assert own_skips and own_skips[0]["reason"].startswith("DateError"), (key, rec)
        assert own not in rec["template_ids"]
        # a cut-off after the release: the own entry passes the date rule; OpenFold's duplicate
        # rule (an exact subsequence covering > 95 % of the query) then rejects it, unless
        # HHsearch aligned too little of it -- then only the date rule keeps it out
        _, after = features_for(target, aln, dbs(template_db), max_template_date="2022-12-31",
                                release_dates=standin.release_dates_path(template_db))
        if own in after["template_ids"]:
            leaked.append(key)
        else:
            assert [s["reason"].split(":")[0] for s in after["templates_skipped"]
                    if s["hit"] == own and s["rank"] == 1] == ["DuplicateError"]
    assert "7ycv.A" in leaked and len(leaked) < len(META)   # 59 of its 63 residues aligned


def test_homologue_is_used_after_its_release_and_skipped_before(aligned, template_db):
    d, _ = aligned["7snc-a", "hhsearch"]
    target = TARGETS["7snc-a"]
    feats, rec = features_for(target, d, dbs(template_db), max_template_date="2022-08-03")
    # the homologue first; weak hits released the same day (the demo's antibody templates)
    # may follow it, as OpenFold keeps up to 4 that pass its filters whatever their probability
    assert rec["template_ids"][0] == "7sao_A" and rec["templates_used"] == len(rec["template_ids"])
    assert rec["top_template"] == "7sao_A" and rec["top_template_date"] == "2022-08-03"
    assert rec["top_template_identity"] == pytest.approx(37 / 38, abs=1e-3)
    assert rec["top_template_coverage"] == 1.0
    assert feats["template_aatype"].shape == (rec["templates_used"], len(target.sequence), 22)
    assert feats["template_all_atom_mask"][0].sum() > 4 * len(target.sequence)
    # submission date: released after it, so no template (OpenFold's mmCIF date check)
    feats, rec = features_for(target, d, dbs(template_db), max_template_date=META["7snc.A"]["submission_date"])
    assert rec["templates_used"] == 0 and feats["template_aatype"].shape[0] == 0
    assert any(s["hit"] == "7sao_A" and "after the max template date" in s["reason"]
               for s in rec["templates_skipped"])


def test_hmmsearch_route_gives_the_same_template_features(aligned, template_db):
    target = TARGETS["7snc-a"]
    a, ra = features_for(target, aligned["7snc-a", "hhsearch"][0], dbs(template_db))
    b, rb = features_for(target, aligned["7snc-a", "hmmsearch"][0], dbs(template_db), "hmmsearch")
    # the homologue leads both routes (their weak hits differ: different search programs)
    assert ra["template_ids"][0] == rb["template_ids"][0] == "7sao_A"
    for key in ("template_aatype", "template_all_atom_positions", "template_all_atom_mask"):
        np.testing.assert_array_equal(a[key][0], b[key][0])


def test_obsolete_entry_is_mapped_and_kalign_realigns_a_differing_sequence(aligned, template_db, tmp_path):
    d, _ = aligned["7sao-a", "hhsearch"]
    target = TARGETS["7sao-a"]
    aln = tmp_path / "aln"
    aln.mkdir()
    # the 7snc_A hit renamed to an obsolete id whose successor is 7sao: OpenFold maps it, finds
    # 7snc's sequence is not in 7sao's SEQRES (one residue differs) and realigns with kalign
    (aln / "pdb70_hits.hhr").write_text((d / "pdb70_hits.hhr").read_text().replace("7snc_A", "1old_A"))
    obsolete = tmp_path / "obsolete.dat"
    obsolete.write_text(standin.OBSOLETE_HEADER + "OBSLTE    01-JAN-22 1OLD     7SAO\n")
    feats, rec = features_for(target, aln, dbs(template_db, obsolete_pdbs=str(obsolete)))
    assert rec["template_ids"][0] == "7sao_A", rec
    assert any("Realigning" in w or "realign" in w.lower() for w in rec["template_warnings"]), rec
    # without the obsolete list the renamed hit has no mmCIF: skipped, recorded, unit goes on
    feats, rec = features_for(target, aln, dbs(template_db))
    assert "7sao_A" not in rec["template_ids"]
    assert any(s["hit"] == "1old_A" and "1old.cif missing" in s["reason"] for s in rec["templates_skipped"])


def test_missing_or_unparsable_mmcif_is_skipped_with_the_reason(aligned, template_db, tmp_path):
    d, _ = aligned["7snc-a", "hhsearch"]
    cifs = tmp_path / "mmcif"
    shutil.copytree(template_db / "pdb_mmcif" / "mmcif_files", cifs)
    (cifs / "7sao.cif").unlink()
    feats, rec = features_for(TARGETS["7snc-a"], d, dbs(template_db, template_mmcif_dir=str(cifs)))
    assert "7sao_A" not in rec["template_ids"]       # the other hits go on (weak ones here)
    assert feats["template_aatype"].shape[0] == rec["templates_used"]
    assert any(s["hit"] == "7sao_A" and "7sao.cif missing" in s["reason"] for s in rec["templates_skipped"])
    (cifs / "7sao.cif").write_text("data_7SAO\n_this is not mmCIF\nloop_ loop_ ;\n")
    feats, rec = features_for(TARGETS["7snc-a"], d, dbs(template_db, template_mmcif_dir=str(cifs)))
    assert "7sao_A" not in rec["template_ids"]
    assert any("7sao_A" in w and "mmCIF parsing errors" in w for w in rec["template_warnings"]), rec


@pytest.mark.parametrize("name, text", [
    ("pdb70_hits.hhr", "No 1\n>7sao_A mol:protein\nProbab=100.00  E-value=garbage\n"),
    ("hmm_output.sto", "# STOCKHOLM 1.0\n7sao_A/1-38 GSSC\n//\n"),
])
def test_malformed_hit_file_is_a_per_target_error(template_db, tmp_path, name, text):
    (tmp_path / name).write_text(text)
    route = "hhsearch" if name.endswith(".hhr") else "hmmsearch"
    with pytest.raises(TargetError, match=rf"7snc-a.*{name}.*malformed"):
        features_for(TARGETS["7snc-a"], tmp_path, dbs(template_db), route)


def test_missing_template_database_is_a_configuration_error_before_any_work(template_db, small_db, tmp_path):
    from eksfold.pipeline import run_pipeline

    missing = dbs(template_db, small_db, pdb70=str(tmp_path / "nope" / "pdb70"))
    with pytest.raises(ConfigError, match="PDB70 database .*nope/pdb70 not found"):
        run_pipeline(str(CAMEO / "targets.fasta"), str(tmp_path / "run"), preset="tiny",
                     databases=missing, limit=1)
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="needs pdb_seqres"):
        align_target(TARGETS["7snc-a"], dbs(template_db, small_db, pdb_seqres=None), AlignConfig(),
                     tmp_path / "a", templates=TemplateConfig(enabled="on", search="hmmsearch"))
    with pytest.raises(ConfigError, match="trained without templates"):
        from eksfold.templates.settings import plan
        plan(RunConfig(databases=dbs(template_db), infer=InferConfig(preset="model_3_ptm"),
                       templates=TemplateConfig(enabled="on")))


def test_templates_default_on_only_for_presets_trained_with_them(template_db):
    from eksfold.templates.settings import plan

    assert plan(RunConfig(databases=dbs(template_db), infer=InferConfig(preset="tiny"))).active
    assert not plan(RunConfig(databases=dbs(template_db), infer=InferConfig(preset="model_4"))).active
    assert not plan(RunConfig(databases=DatabaseConfig(), infer=InferConfig(preset="tiny"))).active
    off = plan(RunConfig(databases=dbs(template_db), templates=TemplateConfig(enabled="off")))
    assert not off.active and "off" in off.reason


def test_hits_are_cached_with_the_msas_and_reused_from_precomputed(small_db, template_db, tmp_path):
    target = TARGETS["7snc-a"]
    cache = tmp_path / "cache"
    on = TemplateConfig(enabled="on")
    first = align_target(target, dbs(template_db, small_db), AlignConfig(cache=str(cache)), tmp_path / "a", templates=on)
    again = align_target(target, dbs(template_db, small_db), AlignConfig(cache=str(cache)), tmp_path / "b", templates=on)
    assert first["cache_hit"] is False and again["cache_hit"] is True
    assert (tmp_path / "b" / "pdb70_hits.hhr").read_text() == (tmp_path / "a" / "pdb70_hits.hhr").read_text()
    assert again["template_hits_reused"] is True and again["template_hits"] == first["template_hits"]
    # OpenFold's precomputed layout (<chain>/a3m/*.a3m, <chain>/hhr/pdb70_hits.hhr): kept as is
    bucket = tmp_path / "bucket" / "7snc_A"
    (bucket / "a3m").mkdir(parents=True)
    (bucket / "hhr").mkdir()
    (bucket / "a3m" / "uniref90_hits.a3m").write_text(f">7snc_A\n{target.sequence}\n")
    (bucket / "hhr" / "pdb70_hits.hhr").write_text((tmp_path / "a" / "pdb70_hits.hhr").read_text())
    pre = align_target(target, dbs(template_db, small_db),
                       AlignConfig(use_precomputed=True, precomputed_source=str(tmp_path / "bucket")),
                       tmp_path / "c", templates=on)
    assert pre["precomputed"] == "7snc_A" and pre["template_hits_reused"] is True
    # hmmsearch on the precomputed UniRef90 MSA (no hmm_output.sto in the public set)
    pre = align_target(target, dbs(template_db, small_db),
                       AlignConfig(use_precomputed=True, precomputed_source=str(tmp_path / "bucket")),
                       tmp_path / "d", templates=TemplateConfig(enabled="on", search="hmmsearch"))
    assert pre["template_msa"] == "uniref90_hits.a3m" and (tmp_path / "d" / "hmm_output.sto").is_file()


def test_mmseqs2_mode_searches_templates_with_its_msa(template_db, tmp_path):
    import os

    from conftest import PROJECT, require

    prefix = os.environ.get("EKSFOLD_MMSEQS_DB") or str(PROJECT / "data/db/mmseqs/uniprot20k")
    require(Path(prefix + ".dbtype"), "MMseqs2 database (make test-setup)")
    m = align_target(TARGETS["7snc-a"], dbs(template_db),
                     AlignConfig(msa_mode="mmseqs2", mmseqs_db=prefix, mmseqs_iterations=1),
                     tmp_path / "a", templates=TemplateConfig(enabled="on"))
    assert m["template_msa"] == "uniref_mmseqs.a3m" and m["template_hits"] >= 2


def test_summary_has_the_template_columns():
    from eksfold.results import columns

    cols = columns(("align", "infer"))
    assert {"template_hits", "template_search_s", "templates_used", "top_template",
            "top_template_identity", "top_template_coverage", "top_template_date"} <= set(cols)
    assert cols[-1] == "error" and cols.index("mean_plddt") < cols.index("templates_used")


def test_run_with_templates_end_to_end(small_db, template_db, tmp_path, worker_env):
    """A run on the local executor (subprocess workers read the templates from the manifest):
    hits beside the MSAs, the template used, the summary's columns; a bad hit file fails its
    target only."""
    from eksfold.pipeline import run_pipeline
    from eksfold.progress.text import TextProgress
    from eksfold.results import load_summary

    src = tmp_path / "t.fasta"
    src.write_text("".join(TARGETS[t].fasta() for t in ("7snc-a", "7sao-a")))
    root = tmp_path / "run"
    common = dict(preset="tiny", databases=dbs(template_db, small_db), reporter=TextProgress(bars=False),
                  templates=TemplateConfig(max_template_date="2022-08-03"))
    run_pipeline(str(src), str(root), stages=("align",), **common)
    assert (root / "targets/7snc-a/align/pdb70_hits.hhr").is_file()
    (root / "targets/7sao-a/align/pdb70_hits.hhr").write_text("No 1\n>7snc_A\nProbab=bad\n")
    run = run_pipeline(str(src), str(root), **common)
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["config"]["templates"]["max_template_date"] == "2022-08-03"
    df = load_summary(run.root).set_index("target")
    assert df.loc["7snc-a", "infer_status"] == "done"
    assert df.loc["7snc-a", "templates_used"] >= 1 and df.loc["7snc-a", "top_template"] == "7sao_A"
    assert df.loc["7snc-a", "top_template_date"] == "2022-08-03" and df.loc["7snc-a", "template_hits"] >= 2
    assert df.loc["7sao-a", "infer_status"] == "failed"
    assert "pdb70_hits.hhr are malformed" in df.loc["7sao-a", "error"]


def test_a_resumed_run_keeps_its_max_template_date(tmp_path):
    from eksfold.templates.settings import pin_date

    (tmp_path / "manifest.json").write_text(json.dumps(
        {"config": {"templates": {"max_template_date": "2026-01-02"}}}))
    assert pin_date(TemplateConfig(), str(tmp_path)).max_template_date == "2026-01-02"
    assert pin_date(TemplateConfig(max_template_date="2022-07-30"), str(tmp_path)).max_template_date == "2022-07-30"
    assert pin_date(TemplateConfig(), str(tmp_path / "new")) == TemplateConfig()


def test_default_databases_include_the_installed_template_databases(template_db, monkeypatch):
    from eksfold.config import default_databases

    monkeypatch.setenv("EKSFOLD_TEMPLATE_DB", str(template_db))
    assert default_databases().pdb70 == standin.paths(template_db)["pdb70"]
    monkeypatch.setenv("EKSFOLD_TEMPLATE_DB", str(template_db / "missing"))
    assert default_databases().pdb70 is None and default_databases().template_mmcif_dir is None
