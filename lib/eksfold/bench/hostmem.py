"""Host memory of GPU inference, measured on the CPU: what an inference Pod must ask for.

    eksfold bench hostmem --lengths 256,512,1000 --depths 5000,15000,30000 --profile cpu-2core

On a GPU the network's activations live in GPU memory; the host holds the worker (Python,
torch, OpenFold), the network's weights until they are copied to the device, and the features:
OpenFold's data pipeline parses the query's MSAs and its feature pipeline crops and stacks them
(per recycling iteration) before the batch moves to the GPU. That pipeline is the same code on
CPU and GPU, so its peak is measured here, each point in a fresh process (the kernel's VmHWM):

- ``features``: a fresh process with torch and OpenFold imported, after OpenFold's
  ``DataPipeline.process_fasta`` and ``FeaturePipeline.process_features`` (the worker's
  ``make_features``) on a query of ``length`` residues with an A3M of ``depth`` rows
  (the query with 30 % of its positions substituted per row, a seeded stand-in: parsing and
  featurisation cost depends on the alignment's shape, not on its biology);
- ``model``: a fresh process after building the full OpenFold network (``model_1_ptm``,
  untrained weights: the size is what matters) on the CPU, its weights in host memory.

Not measured here (no GPU): what CUDA itself adds to the host process (driver, context, the
cuBLAS/cuDNN libraries). :data:`CUDA_HOST_GIB` states an allowance; a GPU run of
``tools/gpu_check.sh`` records the real peak RSS beside the GPU memory.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .common import format_table, parse_lengths, synthetic_sequence

# ASSUMPTION, not measured here: host memory CUDA adds to a PyTorch process using one GPU
# (driver, context, kernels of cuBLAS/cuDNN loaded lazily). Stated generously.
CUDA_HOST_GIB = 3.0
MAX_DEPTH_NOTE = ("OpenFold keeps at most 10,000 UniRef90 and 5,000 MGnify rows (jackhmmer "
                  "caps) plus the BFD/UniRef30 hits; 30,000 rows is beyond what most queries get")

_CHILD = r"""
import json, sys, tempfile
from pathlib import Path
import numpy as np
kind, length, depth, seq = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
from eksfold.memory.usage import status_mb
out = {"kind": kind, "length": length, "depth": depth, "rss_imported_mb": None}
import torch, openfold  # noqa: F401  (the worker has both imported)
from eksfold.models.openfold2.presets import build_openfold_config, get_preset
out["rss_imported_mb"] = status_mb("VmRSS")
config = build_openfold_config(get_preset("model_1_ptm"))
if kind == "model":
    from openfold.model.model import AlphaFold
    model = AlphaFold(config).eval()
    out["parameters"] = sum(p.numel() for p in model.parameters())
else:
    from eksfold.models.openfold2.folder import make_features
    from eksfold.targets import Target
    rng = np.random.default_rng(0)
    letters = np.array(list("ACDEFGHIKLMNPQRSTVWY"))
    query = np.array(list(seq))
    with tempfile.TemporaryDirectory() as tmp:
        aln = Path(tmp) / "msas"
        aln.mkdir()
        rows = [f">query\n{seq}"]
        for i in range(depth - 1):
            row = query.copy()
            hit = rng.random(length) < 0.3
            row[hit] = rng.choice(letters, hit.sum())
            rows.append(f">hit{i}\n{''.join(row)}")
        (aln / "uniref90_hits.a3m").write_text("\n".join(rows) + "\n")
        raw, processed = make_features(Target("q", seq), aln, config)
        out["feature_mb"] = round(sum(v.nbytes for v in processed.values()
                                      if hasattr(v, "nbytes")) / 2**20, 1)
out["peak_rss_mb"] = status_mb("VmHWM")
print(json.dumps(out))
"""


def measure(kind: str, length: int, depth: int) -> dict:
    """One point in a fresh process (see the module docstring)."""
    seq = synthetic_sequence(length)
    proc = subprocess.run([sys.executable, "-c", _CHILD, kind, str(length), str(depth), seq],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"kind": kind, "length": length, "depth": depth,
                "error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def pod_request_gib(table, margin: float = 0.25) -> float:
    """The inference Pod's host memory request: the largest features peak (it includes the
    imported worker) plus the weights the model adds, plus the CUDA allowance, plus ``margin``."""
    feats = [r for r in table if r.get("kind") == "features" and "peak_rss_mb" in r]
    model = [r for r in table if r.get("kind") == "model" and "peak_rss_mb" in r]
    if not feats or not model:
        raise ValueError("need both a features and a model point")
    weights = model[0]["peak_rss_mb"] - model[0]["rss_imported_mb"]
    host_mb = max(r["peak_rss_mb"] for r in feats) + weights + CUDA_HOST_GIB * 1024
    return round(host_mb * (1 + margin) / 1024, 1)


def hostmem_benchmark(lengths, depths, csv=None, log=print) -> list[dict]:
    rows = [measure("model", 16, 1)]
    log(f"model: {rows[0]}")
    for length in lengths:
        for depth in depths:
            rows.append(measure("features", length, depth))
            log(f"features L={length} depth={depth}: {rows[-1]}")
            if csv:
                import pandas as pd
                pd.DataFrame(rows).to_csv(csv, index=False)
    return rows


def add_parser(bsub) -> None:
    r = bsub.add_parser("hostmem", help="host memory of GPU inference (features + weights), "
                                        "measured on the CPU: the inference Pod's request")
    r.add_argument("--lengths", default="256,512,1000")
    r.add_argument("--depths", default="5000,15000,30000")
    r.add_argument("--profile", help="write profiles/NAME/infer-host-memory.csv")
    r.add_argument("--csv", default=None)
    r.set_defaults(func=_cmd)


def _cmd(args) -> int:
    import pandas as pd

    if args.profile:
        out = Path(__file__).resolve().parent.parent / "profiles" / args.profile
        out.mkdir(parents=True, exist_ok=True)
        args.csv = args.csv or str(out / "infer-host-memory.csv")
    rows = hostmem_benchmark(parse_lengths(args.lengths), parse_lengths(args.depths), args.csv)
    df = pd.DataFrame(rows)
    print(format_table(df, [c for c in ("peak_rss_mb", "feature_mb") if c in df]))
    print(f"inference Pod host request (largest features peak + weights + {CUDA_HOST_GIB:g} GiB "
          f"CUDA allowance, an assumption, + 25 %): {pod_request_gib(rows):g} GiB")
    return 0
