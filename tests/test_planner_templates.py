"""The template search in the alignment cost model and the planner, and the optional score stage.

The template term is the measured ``profiles/cpu-2core/templates.csv`` (``eksfold bench
templates``) as seconds per residue; the tests compute it by hand from the rows (or from rows
written here) and check that plans add exactly that to every align unit, and nothing with
``--no-templates``.
"""
from __future__ import annotations

import csv
import subprocess
import sys
from importlib.resources import files

import pytest

from eksfold import planner
from eksfold.errors import ConfigError
from eksfold.planner.costs import Costs, FixedCosts
from eksfold.planner.localsim import simulate_local
from eksfold.templates.cost import per_residue, search_seconds_curve, with_template_search

LENGTHS = {"t1": 400, "t2": 300, "t3": 200, "t4": 100}
# two measured-looking rows: 4 s of HHsearch over 400 residues = 10 ms per residue
ROWS = [{"length": "100", "align_wall_s": "0.5", "hhsearch_wall_s": "1.0", "hmmsearch_wall_s": "0.1"},
        {"length": "300", "align_wall_s": "1.5", "hhsearch_wall_s": "3.0", "hmmsearch_wall_s": "0.3"}]


def simple_costs():
    fixed = FixedCosts(node_start_s=0.0, image_pull_s=0.0, pod_start_s=0.0,
                       worker_open_s={"align": 0.0, "infer": 0.0}, unit_overhead_s={})
    return Costs({"align": lambda n: 10.0, "infer": lambda n: n / 10.0}, fixed, ["test"],
                 "jackhmmer")


def shipped_rows():
    path = files("eksfold.profiles") / "cpu-2core" / "templates.csv"
    return list(csv.DictReader(path.open()))


def test_per_residue_rate_by_hand():
    assert per_residue(ROWS, "hhsearch") == pytest.approx(4.0 / 400)
    assert per_residue(ROWS, "hmmsearch") == pytest.approx(0.4 / 400)
    f, source = search_seconds_curve("hhsearch", rows=ROWS)
    assert f(250) == pytest.approx(2.5) and f(0) == 0.0
    assert "2.00x their jackhmmer wall time" in source and "10.0 ms per residue" in source
    with pytest.raises(ConfigError, match="expected one of hhsearch, hmmsearch"):
        per_residue(ROWS, "blast")
    with pytest.raises(ConfigError, match="no measured hhsearch_wall_s"):
        per_residue([{"length": "100", "hhsearch_wall_s": ""}], "hhsearch")


def test_local_schedule_with_template_search_by_hand():
    # one align worker, longest first: 10+4, 10+3, 10+2, 10+1 s -> the last align ends at 50 s
    # (40 s without). One infer worker runs 40+30+20+10 s back to back from t1's align end:
    # 14 + 100 = 114 s (10 + 100 = 110 s without templates)
    cl = planner.local_cluster(align_workers=1, infer_workers=1)
    off = simulate_local(LENGTHS, cl, simple_costs())
    on = simulate_local(LENGTHS, cl, with_template_search(simple_costs(), "hhsearch", rows=ROWS))
    align = {u.target: (u.start, u.end) for u in on.units if u.stage == "align"}
    assert align == {"t1": (0.0, 14.0), "t2": (14.0, 27.0), "t3": (27.0, 39.0),
                     "t4": (39.0, 50.0)}
    assert (off.makespan_s, on.makespan_s) == (110.0, 114.0)
    assert with_template_search(simple_costs(), None).curves["align"](400) == 10.0


@pytest.mark.parametrize("route", ["hhsearch", "hmmsearch"])
def test_cluster_plan_adds_the_measured_search_to_each_align_unit(route):
    rows = shipped_rows()
    rate = sum(float(r[f"{route}_wall_s"]) for r in rows) / sum(int(r["length"]) for r in rows)
    off = planner.plan(LENGTHS, msa_mode="mmseqs2")
    on = planner.plan(LENGTHS, msa_mode="mmseqs2", templates=route)
    dur = {p.settings["templates"]: {u.target: u.end - u.start for u in p.units
                                     if u.stage == "align"} for p in (off, on)}
    for tid, n in LENGTHS.items():
        assert dur[route][tid] - dur[None][tid] == pytest.approx(rate * n, abs=1e-6)
    assert any(s.startswith(f"align template search ({route})") for s in on.sources)
    assert not any("template search" in s for s in off.sources + off.notes)
    assert any(f"template search ({route})" in n for n in on.notes)


def test_score_stage_planned_after_inference():
    p = planner.plan(LENGTHS, msa_mode="mmseqs2", score=True)
    assert "score" in p.stage_span_s
    units = {(u.stage, u.target): u for u in p.units}
    for tid, n in LENGTHS.items():
        score = units[("score", tid)]
        assert score.start >= units[("infer", tid)].end
        assert score.end - score.start == pytest.approx(0.2 + 0.002 * n)   # ScoreStage's estimate
    local = planner.plan(LENGTHS, local=True, score=True)
    assert {u.stage for u in local.units} == {"align", "infer", "score"}


def test_align_stage_prediction_includes_its_template_search():
    from types import SimpleNamespace

    from eksfold.stages.align import AlignStage

    stage = AlignStage.__new__(AlignStage)
    without = stage.predicted_seconds(200)
    stage.templates = SimpleNamespace(route="hhsearch")    # what open() sets with templates on
    assert stage.predicted_seconds(200) - without == pytest.approx(
        search_seconds_curve("hhsearch")[0](200))


def test_cli_plan_templates_follow_the_preset_and_no_templates():
    def run(*extra):
        out = subprocess.run([sys.executable, "-m", "eksfold.cli.plan", "data/demo/targets.fasta",
                              "--msa", "mmseqs2", *extra], capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout
    assert "align time includes the template search (hhsearch)" in run()    # tiny: templates
    assert "template search (hmmsearch)" in run("--template-search", "hmmsearch")
    assert "template search" not in run("--no-templates")
    assert "template search" not in run("--preset", "model_3_ptm")       # trained without
