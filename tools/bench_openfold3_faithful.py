"""Faithfulness of eksfold's warm OpenFold3 runner to `run_openfold predict`, any configuration
(the test suite checks the reduced one; this is the full one's benchmark):

    PYTHONPATH=lib nice -n 5 .venv/bin/python tools/bench_openfold3_faithful.py \\
        --configuration full --work runs/bench-of3-faithful \\
        --json lib/eksfold/profiles/cpu-2core/openfold3-faithful-full.json

One seeded random checkpoint of the configuration (UNTRAINED). The warm runner (``serve``, the
process a worker keeps) first folds another query, then the compared one (protein + Mg2+, two
seeds); `run_openfold predict` folds the compared query alone in a fresh process, with the same
runner YAML, checkpoint and seeds. Compared: every sample of the seeds after the first (the
CLI featurises a query's first seed from RNGs it never seeds, see runner.py), max |dx| over
all atoms and the largest difference of the sample's scores.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from eksfold.models.openfold3 import outputs
from eksfold.models.openfold3.environment import of3_env, of3_python
from eksfold.models.openfold3.settings import runner_settings, write_runner_yaml

PEPTIDE = "MKTAYIAKQRQISFVK"
FIRST = {"chains": [{"molecule_type": "protein", "chain_ids": ["A"],
                     "sequence": "MKTAYIAKQRQISFVKSHFSRQLEERLG"}]}
COMPARED = {"chains": [{"molecule_type": "protein", "chain_ids": ["A"], "sequence": PEPTIDE},
                       {"molecule_type": "ligand", "chain_ids": ["M"], "ccd_codes": ["MG"]}]}


def coords(path) -> np.ndarray:
    import gemmi
    model = gemmi.read_structure(str(path))[0]
    return np.array([[a.pos.x, a.pos.y, a.pos.z] for ch in model for r in ch for a in r])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configuration", default="full", choices=("full", "reduced"))
    parser.add_argument("--work", required=True)
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--seeds", default="42,7")
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args(argv)
    of3 = of3_python()
    root = Path(args.work).resolve()
    root.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    ckpt = root / f"random-{args.configuration}.pt"
    settings = write_runner_yaml(root / "runner.yaml", runner_settings(
        args.configuration, num_diffusion_samples=args.samples, seeds=seeds))
    t0 = time.perf_counter()
    if not ckpt.exists():
        subprocess.run([of3, "-m", "eksfold.models.openfold3.checkpoint", str(ckpt), "--seed",
                        "3", "--configuration", args.configuration], check=True,
                       env=of3_env(root / "work-ckpt"), capture_output=True, timeout=1800)
    requests = [{"query_set": {"seeds": seeds[:1], "queries": {"first": FIRST}},
                 "out_dir": str(root / "runner-out")},
                {"query_set": {"seeds": seeds, "queries": {"compared": COMPARED}},
                 "out_dir": str(root / "runner-out")}]
    t1 = time.perf_counter()
    warm = subprocess.run([of3, "-m", "eksfold.models.openfold3.runner", "--checkpoint",
                           str(ckpt), "--settings", str(settings), "--work",
                           str(root / "work-runner"), "serve"],
                          input="".join(json.dumps(r) + "\n" for r in requests),
                          capture_output=True, text=True, env=of3_env(root / "work-runner"),
                          timeout=7200)
    lines = [json.loads(x) for x in warm.stdout.splitlines()]
    if warm.returncode != 0 or not all(x.get("ok") for x in lines[1:]):
        print(warm.stderr[-3000:], file=sys.stderr)
        return 1
    t2 = time.perf_counter()
    query = root / "cli-query.json"
    query.write_text(json.dumps({"seeds": seeds, "queries": {"compared": COMPARED}}))
    (root / "work-cli").mkdir(exist_ok=True)
    cli = subprocess.run([of3.replace("/python", "/run_openfold"), "predict", "--query-json",
                          str(query), "--inference-ckpt-path", str(ckpt), "--runner-yaml",
                          str(settings), "--output-dir", str(root / "cli-out")],
                         capture_output=True, text=True, env=of3_env(root / "work-cli"),
                         cwd=root / "work-cli", timeout=7200)
    if cli.returncode != 0:
        print(cli.stderr[-3000:], file=sys.stderr)
        return 1
    t3 = time.perf_counter()
    ours = outputs.collect(root / "runner-out", "compared", seeds[1:], args.samples)
    theirs = outputs.collect(root / "cli-out", "compared", seeds[1:], args.samples)
    rows = []
    for a, b in zip(ours, theirs):
        xa, xb = coords(root / "runner-out" / a.structure), coords(root / "cli-out" / b.structure)
        flat = [k for k, v in a.scores.items() if isinstance(v, (int, float))]
        rows.append({"seed": a.seed, "sample": a.sample, "atoms": len(xa),
                     "max_abs_dx_A": float(np.abs(xa - xb).max()) if xa.shape == xb.shape
                     else None,
                     "max_score_diff": max(abs(float(a.scores[k]) - float(b.scores[k]))
                                           for k in flat)})
    result = {"configuration": args.configuration, "parameters": lines[0].get("parameters"),
              "untrained": lines[0].get("untrained"), "seeds": seeds, "samples": args.samples,
              "compared": rows, "within_1e-3_A": all(r["max_abs_dx_A"] is not None and
                                                      r["max_abs_dx_A"] <= 1e-3 for r in rows),
              "runner_s": round(t2 - t1, 1), "cli_s": round(t3 - t2, 1),
              "checkpoint_s": round(t1 - t0, 1),
              "command": "tools/bench_openfold3_faithful.py " + " ".join(argv or sys.argv[1:])}
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0 if result["within_1e-3_A"] else 1


if __name__ == "__main__":
    sys.exit(main())
