"""OpenFold3's part of ``tools/gpu_check.sh``: its warm runner on a GPU, time and memory by
token count, beside NVIDIA's published NIM figures the cost model uses until then.

    python -m eksfold.models.openfold3.gpucheck --out lib/eksfold/profiles/gpu-h100 \\
        [--device cuda] [--configuration full] [--tokens 64,186,384,768] [--samples 5]

One runner process (``runner ... run``, the same code a warm eksfold worker serves from),
a seeded random checkpoint (UNTRAINED: only time and memory mean anything), then queries of
rising size: single protein chains of ``--tokens`` residues (synthetic sequences, no MSA:
single-sequence mode, so the MSA module's share is a lower bound), a heterodimer of the
largest size (two halves) and the smallest chain with aspirin (SMILES, 13 heavy atoms).
Per query: wall seconds, CPU seconds, the peak of memory torch allocated on the GPU (reset
per query), the structure parsed. The first query of the
smallest size runs twice: its first pass pays CUDA/Triton warm-up and is reported as such.

Writes ``openfold3.csv`` and ``openfold3-check.json`` into ``--out``; exit 1 when a query
failed or, on CUDA, no GPU memory was measured. ``--device cpu`` runs the same on the CPU
(the test does, reduced configuration, to keep this script honest without a GPU).
Coordinates are not compared with the CPU: diffusion noise comes from the device's RNG, so
CPU and GPU samples differ by design.
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .backend import OpenFold3
from .complex import make_chain, make_target, query_set
from .environment import of3_env, of3_python
from .settings import runner_settings, write_runner_yaml

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"     # 13 heavy atoms


def queries(tokens: list[int]) -> list[tuple[str, str, int, object]]:
    """(query id, kind, token count, ComplexTarget), smallest first."""
    from ...bench.common import synthetic_sequence

    out = []
    for n in sorted(tokens):
        name = f"protein-{n}"
        out.append((name, "protein", n, make_target(name, [make_chain(
            name, "protein", ["A"], sequence=synthetic_sequence(n))], target_id=name)))
    # a heterodimer of the largest size (two halves) and the smallest chain with a ligand
    half, small = max(tokens) // 2, min(tokens)
    dimer, pair = f"dimer-{2 * half}", f"protein-ligand-{small + 13}"
    out.append((dimer, "heterodimer", 2 * half, make_target(dimer, [
        make_chain(dimer, "protein", ["A"], sequence=synthetic_sequence(half, seed=1)),
        make_chain(dimer, "protein", ["B"], sequence=synthetic_sequence(half, seed=2))],
        target_id=dimer)))
    out.append((pair, "protein+ligand", small + 13, make_target(pair, [
        make_chain(pair, "protein", ["A"], sequence=synthetic_sequence(small, seed=3)),
        make_chain(pair, "ligand", ["L"], smiles=ASPIRIN)], target_id=pair)))
    return out


def run_queries(work: Path, configuration: str, device: str, samples: int,
                tokens: list[int], seed: int = 0, timeout: float = 3000) -> tuple[dict, list]:
    """Run the runner once over every query; (runner info, one result dict per query)."""
    work.mkdir(parents=True, exist_ok=True)
    accelerator = "gpu" if device == "cuda" else "cpu"
    settings = write_runner_yaml(work / "runner.json", runner_settings(
        configuration, accelerator, num_diffusion_samples=samples, seeds=[42]))
    items = queries(tokens)
    # the smallest query twice: the first pass carries the device's warm-up
    warm = items[0]
    qs = query_set([warm[3]] + [t for _, _, _, t in items])
    qs["queries"] = {"warmup-" + warm[0]: qs["queries"][warm[0]], **qs["queries"]}
    (work / "queries.json").write_text(json.dumps(qs, indent=1))
    checkpoint = work / f"random-{configuration}-{seed}.pt"
    cmd = [of3_python(), "-m", "eksfold.models.openfold3.runner", "--checkpoint",
           str(checkpoint), "--settings", str(settings), "--work", str(work / "scratch"),
           "--random-seed", str(seed), "--configuration", configuration,
           "run", str(work / "queries.json"), str(work / "out")]
    started = time.perf_counter()
    from .folder import _die_with_parent   # the runner must not outlive this process

    proc = subprocess.run(cmd, capture_output=True, text=True, env=of3_env(work / "scratch"),
                          timeout=timeout, preexec_fn=_die_with_parent)
    lines = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"the OpenFold3 runner exited {proc.returncode} before loading: "
                           f"{proc.stderr[-3000:]}")
    info, results = lines[0], lines[1:]
    info["total_seconds"] = round(time.perf_counter() - started, 1)
    kinds = {name: (kind, n) for name, kind, n, _ in items}
    kinds["warmup-" + warm[0]] = ("warm-up pass", warm[2])
    for r in results:
        r["kind"], r["tokens"] = kinds.get(r["query"], ("?", None))
    return info, results


def table(info: dict, results: list, configuration: str, device: str, samples: int) -> list:
    rows = []
    for r in results:
        nim = OpenFold3.gpu_seconds(r["tokens"]) if r["tokens"] else None
        rows.append({"configuration": configuration, "device": device, "samples": samples,
                     "query": r["query"], "kind": r["kind"], "tokens": r["tokens"],
                     "ok": bool(r.get("ok")), "seconds": r.get("seconds"),
                     "cpu_seconds": r.get("cpu_seconds"), "cuda_peak_mb": r.get("cuda_peak_mb"),
                     "nim_h100_seconds": None if nim is None else round(nim, 2),
                     "parameters": info.get("parameters"), "untrained": info.get("untrained"),
                     "error": None if r.get("ok") else str(r.get("error"))[:300]})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--configuration", default="full", choices=("full", "reduced"))
    parser.add_argument("--tokens", default="64,186,384,768")
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tokens = [int(x) for x in args.tokens.split(",") if x.strip()]
    with tempfile.TemporaryDirectory(prefix="of3-gpucheck-") as tmp:
        info, results = run_queries(Path(args.work or tmp), args.configuration, args.device,
                                    args.samples, tokens)
    rows = table(info, results, args.configuration, args.device, args.samples)
    with open(out / "openfold3.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    failed = [r["query"] for r in rows if not r["ok"]]
    no_memory = args.device == "cuda" and not all(r["cuda_peak_mb"] for r in rows if r["ok"])
    check = {"runner": info, "queries": len(rows), "failed": failed,
             "gpu_memory_measured": not no_memory, "ok": not failed and not no_memory}
    (out / "openfold3-check.json").write_text(json.dumps(check, indent=1) + "\n")
    print(f"OpenFold3 {args.configuration} on {args.device} ({info.get('parameters')} "
          f"parameters, UNTRAINED random weights, {args.samples} samples), load "
          f"{info.get('load_seconds')} s")
    print(f"{'query':<22}{'tokens':>7}{'s':>9}{'NIM H100 s':>12}{'GPU peak MB':>13}  ok")
    for r in rows:
        print(f"{r['query']:<22}{r['tokens'] or 0:>7}{r['seconds'] or 0:>9.2f}"
              f"{r['nim_h100_seconds'] or 0:>12.2f}{r['cuda_peak_mb'] or 0:>13.0f}  {r['ok']}"
              + (f"  {r['error']}" if r["error"] else ""))
    return 0 if check["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
