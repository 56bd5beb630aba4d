"""The UniProt search for pairing in the planner's align cost (issue 24): heteromers of a
pairing preset (OpenFold3) gain the measured ratio (``profiles/cpu-2core/pairing.csv``, ``eksfold
bench pairing``) of each distinct protein chain's own align seconds; homomers, monomers and
presets that do not pair gain nothing. The tests compute the term by hand from the rows."""
from __future__ import annotations

import csv
from importlib.resources import files

import pytest

from eksfold import planner
from eksfold.planner.costs import Costs, FixedCosts
from eksfold.planner.localsim import simulate_local
from eksfold.planner.pairing import heteromer_chains, pairing_ratio, with_pairing_search

S6 = "MVRKYETVVIVQPDLGDDELKGLNAKVTDIIATMKGDLHRLEDWGVRKLAYPINKSARGRYYYVRFDGDAALIAELERRLRLDDK"
S18 = "MKPMRQKPGRGQGNKSISNALASKKKVSKNQAVFFDYRDERKLKRFINDQGKMIPRRITGLSAKEQNLLTHSVKWARFL"


def simple_costs():
    fixed = FixedCosts(node_start_s=0.0, image_pull_s=0.0, pod_start_s=0.0,
                       worker_open_s={"align": 0.0, "infer": 0.0}, unit_overhead_s={})
    return Costs({"align": lambda n: n / 10.0, "infer": lambda n: 1.0}, fixed, ["test"],
                 "mmseqs2")


def by_hand(mode: str) -> float:
    rows = [r for r in csv.DictReader((files("eksfold.profiles") / "cpu-2core" /
                                       "pairing.csv").open()) if r["mode"] == mode]
    assert len(rows) >= 3
    return sum(float(r["uniprot_cpu_s"]) for r in rows) / sum(float(r["msa_cpu_s"]) for r in rows)


@pytest.mark.parametrize("mode", ["jackhmmer", "mmseqs2"])
def test_the_ratio_is_the_committed_measurement(mode):
    ratio, source = pairing_ratio(mode)
    assert ratio == pytest.approx(by_hand(mode)) and ratio > 0
    assert "pairing.csv" in source and mode in source


def test_heteromer_align_units_gain_the_ratio_of_their_chains(tmp_path):
    ratio = by_hand("mmseqs2")
    # h and m share a length: the extra is their mean, the total exact
    lengths = {"h": 300, "m": 300, "x": 200}
    costs, note = with_pairing_search(simple_costs(), {"h": [100, 120]}, lengths, "mmseqs2")
    extra = ratio * (10.0 + 12.0)
    assert costs.work("align", 300) == pytest.approx(30.0 + extra / 2)
    assert costs.work("align", 200) == pytest.approx(20.0)
    cl = planner.local_cluster(align_workers=1, infer_workers=1)
    units = [u for u in simulate_local(lengths, cl, costs).units if u.stage == "align"]
    assert sum(u.end - u.start for u in units) == pytest.approx(80.0 + extra)
    assert "1 heteromer(s)" in note and f"{extra:.1f} s" in note
    same, none = with_pairing_search(simple_costs(), {}, lengths, "mmseqs2")
    assert none is None and same.work("align", 300) == 30.0


def test_only_heteromers_of_a_pairing_preset_count_and_plans_say_so(tmp_path):
    fasta = tmp_path / "complexes.fasta"
    fasta.write_text(f">het\n{S6}:{S18}\n>homo\n{S6}:{S6}\n>mono\n{S18}\n>het3\n{S6}:{S18}:{S18}\n")
    chains = heteromer_chains(str(fasta), preset="of3-tiny")
    assert chains == {"het": [len(S6), len(S18)], "het3": [len(S6), len(S18)]}
    assert heteromer_chains(str(fasta), preset="model_1_ptm") == {}
    assert heteromer_chains({"het": 300}, preset="of3-tiny") == {}
    result = planner.plan(str(fasta), local=True, preset="of3-tiny", msa_mode="mmseqs2")
    assert any("UniProt search for pairing of 2 heteromer(s)" in n for n in result.notes)
    assert any("pairing.csv" in s for s in result.sources)
    cluster = planner.plan(str(fasta), preset="of3-tiny", msa_mode="jackhmmer")
    assert any("pairing of 2 heteromer(s)" in n for n in cluster.notes)
