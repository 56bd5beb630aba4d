"""OpenFold3 as an eksfold back end, end to end: `eksfold run` on a small mixed set (a
monomer, a heterodimer in ColabFold's A:B notation, a protein + ligand job in AlphaFold3 JSON,
and a job with an invalid SMILES) with the local executor and one warm inference worker, on
the real OpenFold3 code in .venv-of3 (reduced configuration, seeded random checkpoint:
UNTRAINED) and the real jackhmmer on the 20,000-sequence database.

Checks: every valid unit done and its outputs parse with gemmi; the bad SMILES refused by
name while the rest goes on; the summary's complex columns; each distinct protein chain
aligned once (the MSA cache serves the repeats); one network load for the whole run; a rerun
skips every done unit; and the fold through the eksfold worker equals OpenFold3's warm runner
run on its own for the same query (coordinates within 1e-3 A, the same confidences).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gemmi
import numpy as np
import pytest

from eksfold.models.openfold3.environment import LIB, of3_env
from eksfold.models.openfold3.folder import query_for
from eksfold.models.openfold3.settings import runner_settings, write_runner_yaml
from eksfold.contracts import ExitCode
from eksfold.results import load_summary
from eksfold.run import Run

# Three folds and two runner starts: tens of seconds each on an idle 2-core machine, many
# minutes on a shared one (a runner start took 272 s under a load average of 11).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(6000)]
SEQ_A = "MKTAYIAKQRQISFVKSHFSRQLEERLG"     # the monomer, and chain A of the dimer
SEQ_B = "GSHMLEDPVDAFQRLLKEAW"             # chain B of the dimer, and the ligand job's protein
FASTA = f">mono\n{SEQ_A}\n>dimer\n{SEQ_A}:{SEQ_B}\n"
JOBS = [{"name": "pep-aspirin", "dialect": "alphafold3", "version": 2, "modelSeeds": [42],
         "sequences": [{"protein": {"id": "A", "sequence": SEQ_B}},
                       {"ligand": {"id": "L", "smiles": "CC(=O)Oc1ccccc1C(=O)O"}}]},
        {"name": "bad-smiles", "dialect": "alphafold3", "version": 2,
         "sequences": [{"protein": {"id": "A", "sequence": SEQ_B}},
                       {"ligand": {"id": "L", "smiles": "C1CC(("}}]}]
DONE = ("mono", "dimer", "pep-aspirin")


def eksfold_run(inputs, root, cache, db, env):
    cmd = [sys.executable, "-m", "eksfold.cli", "run", str(inputs), "--root", str(root),
           "--preset", "of3-tiny", "--weights", "random:3", "--seed", "42", "--device", "cpu",
           "--uniref90", str(db), "--msa-cache", str(cache), "--stages", "align,infer",
           "--infer-workers", "1"]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3000)


@pytest.fixture(scope="module")
def of3_run(of3, small_db, of3_cache, tmp_path_factory):
    import os

    base = tmp_path_factory.mktemp("of3run")
    inputs = base / "inputs"
    inputs.mkdir()
    (inputs / "mixed.fasta").write_text(FASTA)
    (inputs / "jobs.json").write_text(json.dumps(JOBS))
    env = dict(os.environ, EKSFOLD_CACHE=str(of3_cache(base / "cache")))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(LIB), env.get("PYTHONPATH")) if p)
    first = eksfold_run(inputs, base / "run", base / "msa-cache", small_db, env)
    # SOME_INVALID: the run finished, one target (bad-smiles) refused as bad input
    assert first.returncode == ExitCode.SOME_INVALID, first.stderr[-3000:]
    second = eksfold_run(inputs, base / "run", base / "msa-cache", small_db, env)
    return base, Run.open(str(base / "run")), first, second, env


def test_every_valid_target_is_folded_and_the_bad_one_named(of3_run):
    base, run, first, _, _ = of3_run
    df = load_summary(run.root).set_index("target")
    for tid in DONE:
        assert df.loc[tid, "align_status"] == "done", df.loc[tid].to_dict()
        assert df.loc[tid, "infer_status"] == "done", df.loc[tid].to_dict()
    assert "bad-smiles" not in df.index or df.loc["bad-smiles", "infer_status"] != "done"
    assert "bad-smiles" in first.stderr and "chain L" in first.stderr
    assert "invalid SMILES 'C1CC(('" in first.stderr
    # the complex columns: chains, tokens (residues + ligand heavy atoms), ipTM, ranking score
    assert df.loc["mono", "chains"] == 1 and df.loc["dimer", "chains"] == 2
    assert df.loc["dimer", "tokens"] == len(SEQ_A) + len(SEQ_B)
    assert df.loc["pep-aspirin", "tokens"] == len(SEQ_B) + 13          # aspirin: 13 heavy atoms
    assert df.loc["dimer", "length"] == df.loc["dimer", "tokens"]
    for tid in DONE:
        assert 0 <= df.loc[tid, "ranking_score"] and 0 < df.loc[tid, "mean_plddt"] < 100
        assert bool(df.loc[tid, "untrained"])
    assert df.loc["mono", "iptm"] == 0 and 0 < df.loc["dimer", "iptm"] <= 1
    rec = run.record("infer", "dimer")
    assert set(rec.metrics["chain_pair_iptm"]) == {"(A, B)"}
    assert rec.metrics["msas"]["A"]["files"] == ["uniref90_hits.sto"]


def test_outputs_parse_with_gemmi(of3_run):
    _, run, _, _, _ = of3_run
    expected_chains = {"mono": ["A"], "dimer": ["A", "B"], "pep-aspirin": ["A", "L"]}
    for tid in DONE:
        out = run.store.local_path(f"targets/{tid}/infer")
        st = gemmi.read_structure(str(out / "unrelaxed.cif"))
        assert [ch.name for ch in st[0]] == expected_chains[tid]
        atoms = sum(1 for ch in st[0] for res in ch for _ in res)
        assert np.load(out / "plddt.npy").shape == (atoms,)
        tokens = run.record("infer", tid).metrics["tokens"]
        assert np.load(out / "pae.npy").shape == (tokens, tokens)
        ranking = json.loads((out / "ranking.json").read_text())
        assert ranking["untrained"] and ranking["samples"][0]["rank"] == 1
        assert gemmi.read_structure(str(out / "unrelaxed.pdb"))[0].count_atom_sites() == atoms


def test_each_distinct_chain_is_aligned_once_and_the_network_loaded_once(of3_run):
    _, run, _, _, _ = of3_run
    chains = [c for tid in DONE
              for c in (run.record("align", tid).metrics.get("chains")
                        or {"A": run.record("align", tid).metrics}).values()]
    # four protein chains, two distinct sequences: two searches, two cache hits
    assert len(chains) == 4
    assert sorted(bool(c["cache_hit"]) for c in chains) == [False, False, True, True]
    infer = [run.record("infer", tid) for tid in DONE]
    loads = [r.metrics.get("load_seconds") for r in infer if r.metrics.get("load_seconds")]
    assert len(loads) == 1 and sum(r.metrics["model_reused"] for r in infer) == 2
    for r in infer:   # the runner's memory is the unit's: counted in its peak
        assert r.metrics["child_peak_rss_mb"] > 500
        assert r.peak_rss_mb >= r.metrics["child_peak_rss_mb"]


def test_a_rerun_skips_done_units(of3_run):
    _, run, first, second, _ = of3_run
    assert second.returncode == first.returncode
    for tid in DONE:
        assert run.record("infer", tid).metrics["inference_s"] > 0
    assert "infer mono: running" not in second.stdout + second.stderr
    assert "align dimer: running" not in second.stdout + second.stderr


def test_the_worker_fold_equals_openfold3s_runner_on_the_same_query(of3_run, of3):
    """The same query (the dimer with the MSAs the align stage wrote), checkpoint, settings
    and seed through OpenFold3's warm runner on its own, in a fresh process."""
    base, run, _, _, env = of3_run
    target = next(t for t in run.targets if t.id == "dimer")
    align = run.store.local_path("targets/dimer/align")
    query, _ = query_for(target, align, base / "staging")
    ckpt = base / "cache" / "openfold3" / "random-reduced-3.pt"
    settings = write_runner_yaml(base / "runner.json",
                                 runner_settings("reduced", seeds=[42]))
    (base / "query.json").write_text(json.dumps({"seeds": [42], "queries": {"dimer": query}}))
    proc = subprocess.run([of3, "-m", "eksfold.models.openfold3.runner", "--checkpoint",
                           str(ckpt), "--settings", str(settings), "--work", str(base / "w"),
                           "run", str(base / "query.json"), str(base / "alone")],
                          capture_output=True, text=True, env=of3_env(base / "w", env),
                          timeout=2400)
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert proc.returncode == 0 and lines[1]["ok"], proc.stderr[-3000:]
    alone = gemmi.read_structure(str(base / "alone" / lines[1]["best"]["structure"]))
    mine = gemmi.read_structure(str(run.store.local_path("targets/dimer/infer/unrelaxed.cif")))
    a = np.array([a.pos.tolist() for ch in alone[0] for r in ch for a in r])
    b = np.array([a.pos.tolist() for ch in mine[0] for r in ch for a in r])
    assert a.shape == b.shape and np.abs(a - b).max() < 1e-3
    scores = run.record("infer", "dimer").metrics
    assert abs(lines[1]["best"]["scores"]["sample_ranking_score"]
               - scores["ranking_score"]) < 1e-3


def test_the_report_shows_chains_interfaces_and_pae_blocks_of_the_complexes(of3_run, tmp_path):
    """`eksfold report` (the analysis notebook, executed) on the OpenFold3 run."""
    from eksfold.report import build_report

    _, run, _, _, _ = of3_run
    page = Path(build_report(run.root, tmp_path / "report.html")).read_text()
    assert page.count("<th>chain pair</th>") == 2     # the dimer and protein + ligand, not the monomer
    assert "A–B" in page and "mean PAE A→B" in page
    assert "chain L" in page                                   # the aspirin job's ligand chain
    assert page.count("no reference complex: no interface scores") == 2
    assert "UNTRAINED" in page
