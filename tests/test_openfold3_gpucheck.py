"""OpenFold3's GPU check (tools/gpu_check.sh) run on the CPU: the same module, runner and table,
reduced configuration, tiny queries. Keeps the script a GPU machine runs honest where no GPU
is lent; on CUDA it also needs the GPU memory it reports (not checkable here)."""
from __future__ import annotations

import csv
import json

import pytest

from eksfold.models.openfold3 import gpucheck

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3000)]


def test_gpu_check_runs_every_query_kind_and_writes_its_table_on_cpu(of3, tmp_path):
    code = gpucheck.main(["--out", str(tmp_path / "profile"), "--device", "cpu",
                          "--configuration", "reduced", "--tokens", "16,32", "--samples", "1",
                          "--work", str(tmp_path / "work")])
    check = json.loads((tmp_path / "profile" / "openfold3-check.json").read_text())
    rows = list(csv.DictReader(open(tmp_path / "profile" / "openfold3.csv")))
    assert code == 0, check
    assert [r["kind"] for r in rows] == ["warm-up pass", "protein", "protein", "heterodimer",
                                         "protein+ligand"]
    assert [int(r["tokens"]) for r in rows] == [16, 16, 32, 32, 29]
    assert all(r["ok"] == "True" and float(r["seconds"]) > 0 for r in rows)
    assert all(r["cuda_peak_mb"] == "" for r in rows)          # CPU: no GPU figure invented
    assert all(r["untrained"] == "True" for r in rows)
    assert float(rows[2]["nim_h100_seconds"]) > float(rows[1]["nim_h100_seconds"])
    assert check["ok"] and check["runner"]["untrained"]
