"""Warm OpenFold3 runner vs a bare loop over OpenFold3's own runner, side by side in one run.

Run with the OpenFold3 environment (it imports openfold3):

    PYTHONPATH=lib nice -n 10 .venv-of3/bin/python tools/bench_openfold3_warm.py \\
        --work runs/bench-of3 --repeats 2 --cli \\
        --csv lib/eksfold/profiles/cpu-2core/openfold3-warm.csv

One process holds two networks loaded from the same checkpoint (``--configuration``, seeded
random weights, UNTRAINED): OpenFold3's ``InferenceExperimentRunner`` driven by the least a
loop needs (fresh per-query data module, trainer and MSA settings: OpenFold3 caches them per
query set), and :class:`eksfold.models.openfold3.runner.WarmRunner` (the same plus output
verification and ranking). Each query runs on both, in alternating order per repeat, so load
from other processes falls on both alike; wall and CPU seconds (this process, all threads) are
reported, after one unmeasured warm-up query on each. With ``--cli`` each query also runs through ``run_openfold predict`` (a new process,
network built and checkpoint loaded every time): what a loop over the CLI costs.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from eksfold.models.openfold3.checkpoint import make_random_checkpoint
from eksfold.models.openfold3.runner import WarmRunner, confine_environment
from eksfold.models.openfold3.settings import runner_settings, write_runner_yaml

PEPTIDE = "MKTAYIAKQRQISFVK"
QUERIES = {
    "pep-mg": {"chains": [{"molecule_type": "protein", "chain_ids": ["A"], "sequence": PEPTIDE},
                          {"molecule_type": "ligand", "chain_ids": ["M"], "ccd_codes": ["MG"]}]},
    "chain33": {"chains": [{"molecule_type": "protein", "chain_ids": ["A"],
                            "sequence": "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"}]},
    "nucleic": {"chains": [{"molecule_type": "protein", "chain_ids": ["A"], "sequence": PEPTIDE},
                           {"molecule_type": "rna", "chain_ids": ["B"], "sequence": "ACGUAC"},
                           {"molecule_type": "dna", "chain_ids": ["C"], "sequence": "GATTAC"}]},
}


class BareLoop:
    """OpenFold3's own runner, set up once, looped over queries with nothing of ours."""

    def __init__(self, checkpoint: Path, settings: dict, work: Path):
        from openfold3.entry_points.experiment_runner import InferenceExperimentRunner
        from openfold3.entry_points.validator import InferenceExperimentConfig
        settings = json.loads(json.dumps(settings))
        settings["experiment_settings"]["output_dir"] = str(work / "bare-setup")
        self.runner = InferenceExperimentRunner(
            InferenceExperimentConfig(inference_ckpt_path=checkpoint, **settings))
        self.runner.setup()

    def predict(self, name: str, query: dict, out_dir: Path, seeds: list[int]) -> None:
        from openfold3.projects.of3_all_atom.config.inference_query_format import (
            InferenceQuerySet)
        r = self.runner
        for attr in ("output_dir", "log_dir", "trainer", "callbacks", "data_module_config",
                     "lightning_data_module"):
            r.__dict__.pop(attr, None)
        r.experiment_config.experiment_settings.output_dir = out_dir
        msa = r.experiment_config.msa_computation_settings
        r.experiment_config.msa_computation_settings = type(msa)(**msa.model_dump())
        r.run(InferenceQuerySet.model_validate({"seeds": seeds, "queries": {name: query}}))
        r.cleanup_msa_workspace()


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def run_cli(name, query, checkpoint, yaml, out_dir, work, seeds):
    qfile = work / f"cli-{name}.json"
    qfile.write_text(json.dumps({"seeds": seeds, "queries": {name: query}}))
    cli = Path(sys.executable).with_name("run_openfold")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    proc = subprocess.run([str(cli), "predict", "--query-json", str(qfile),
                           "--inference-ckpt-path", str(checkpoint), "--runner-yaml", str(yaml),
                           "--output-dir", str(out_dir)], capture_output=True, text=True,
                          env=dict(os.environ), cwd=work)
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0 or not list(out_dir.glob(f"{name}/seed_*/*_model.cif")):
        raise RuntimeError(f"run_openfold failed for {name}: {proc.stderr[-1500:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", required=True, help="scratch and output directory")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--configuration", default="reduced", choices=("reduced", "full"))
    parser.add_argument("--cli", action="store_true", help="also loop over run_openfold")
    parser.add_argument("--csv", help="write the per-query rows here")
    parser.add_argument("--queries", default=",".join(QUERIES),
                        help=f"comma-separated subset of {', '.join(QUERIES)}")
    args = parser.parse_args(argv)
    work = Path(args.work).resolve()
    confine_environment(work)
    checkpoint = work / f"{args.configuration}-seed0.pt"
    label = make_random_checkpoint(checkpoint, seed=0, configuration=args.configuration)
    settings = runner_settings(args.configuration, num_diffusion_samples=1, seeds=[42])
    yaml = write_runner_yaml(work / "runner.yaml", settings)
    seeds = [42]
    load_bare = timed(lambda: setattr(main, "bare", BareLoop(checkpoint, settings, work)))
    load_warm = timed(lambda: setattr(main, "warm", WarmRunner(checkpoint, settings, work)))
    bare, warm = main.bare, main.warm
    # One unmeasured query on each first: one-off costs of a process's first prediction
    # (biotite's CCD read, lazy initialisation) would otherwise land on whichever runs first.
    first = args.queries.split(",")[0]
    bare.predict(first, QUERIES[first], work / "warm-up" / "bare", seeds)
    _check(warm.predict({"seeds": seeds, "queries": {first: QUERIES[first]}},
                        work / "warm-up" / "warm"))
    rows = []
    for rep in range(args.repeats):
        for i, name in enumerate(args.queries.split(",")):
            query = QUERIES[name]
            out = work / f"rep{rep}"
            runs = {"bare": lambda: bare.predict(name, query, out / "bare", seeds),
                    "warm": lambda: _check(warm.predict({"seeds": seeds, "queries": {name: query}},
                                                        out / "warm"))}
            order = ["bare", "warm"] if (rep + i) % 2 == 0 else ["warm", "bare"]
            row = {"repeat": rep, "query": name, "first": order[0]}
            for kind in order:
                row[f"{kind}_wall_s"], row[f"{kind}_cpu_s"] = timed(runs[kind])
            if args.cli:
                row["cli_wall_s"], row["cli_cpu_s"] = run_cli(name, query, checkpoint, yaml,
                                                              out / "cli", work, seeds)
            rows.append(row)
            print(json.dumps({k: round(v, 2) if isinstance(v, float) else v
                              for k, v in row.items()}), flush=True)
    print_table(rows, load_bare, load_warm, label, args.configuration)
    if args.csv:
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        with open(args.csv, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows({k: round(v, 3) if isinstance(v, float) else v
                              for k, v in r.items()} for r in rows)
    return 0


def _check(results):
    bad = [r for r in results if not r["ok"]]
    if bad:
        raise RuntimeError(f"warm runner failed: {bad}")


def print_table(rows, load_bare, load_warm, label, configuration="reduced"):
    print(f"\ncheckpoint: {configuration} configuration, {label['parameters']:,} parameters, "
          f"UNTRAINED (seed {label['seed']}); load wall/CPU s: bare {load_bare[0]:.1f}/"
          f"{load_bare[1]:.1f}, warm {load_warm[0]:.1f}/{load_warm[1]:.1f}")
    cli = "cli_wall_s" in rows[0]
    head = f"{'query':10} {'rep':>3} {'bare wall':>9} {'warm wall':>9} {'bare CPU':>8} " \
           f"{'warm CPU':>8} {'CPU ovh':>8}" + (f" {'CLI wall':>8} {'CLI CPU':>8}" if cli else "")
    print(head)
    for r in rows:
        ovh = 100 * (r["warm_cpu_s"] / r["bare_cpu_s"] - 1)
        line = (f"{r['query']:10} {r['repeat']:>3} {r['bare_wall_s']:9.2f} {r['warm_wall_s']:9.2f}"
                f" {r['bare_cpu_s']:8.2f} {r['warm_cpu_s']:8.2f} {ovh:7.1f}%")
        if cli:
            line += f" {r['cli_wall_s']:8.2f} {r['cli_cpu_s']:8.2f}"
        print(line)
    tot = {k: sum(r[k] for r in rows) for k in rows[0] if k.endswith("_s")}
    print(f"{'total':14} {tot['bare_wall_s']:9.2f} {tot['warm_wall_s']:9.2f} "
          f"{tot['bare_cpu_s']:8.2f} {tot['warm_cpu_s']:8.2f} "
          f"{100 * (tot['warm_cpu_s'] / tot['bare_cpu_s'] - 1):7.1f}%"
          + (f" {tot['cli_wall_s']:8.2f} {tot['cli_cpu_s']:8.2f}" if cli else ""))
    print(f"warm/bare: wall {tot['warm_wall_s'] / tot['bare_wall_s']:.3f}, "
          f"CPU {tot['warm_cpu_s'] / tot['bare_cpu_s']:.3f}"
          + (f"; CLI/warm: wall {tot['cli_wall_s'] / tot['warm_wall_s']:.2f}, CPU "
             f"{tot['cli_cpu_s'] / tot['warm_cpu_s']:.2f}" if cli else ""))


if __name__ == "__main__":
    raise SystemExit(main())
