"""The Python half of ``tools/gpu_check.sh``: checks that need a CUDA device.

    python -m eksfold.memory.gpucheck --out lib/eksfold/profiles/gpu-h200

1. the compiled attention kernel (``attn_core_inplace_cuda.forward_``) against torch.softmax;
2. ``tiny`` and ``demo`` folds on CUDA with warm-up, CUDA sync and per-point peak memory
   (allocated <= reserved, both > 0, reset after warm-up);
3. CPU vs CUDA coordinates of the same weights and input: every parameter random (seeded,
   built on the CPU, so both devices hold the same values; AF2's zero-initialised final layers
   would otherwise collapse the structure), TF32 off; tolerance ``COORD_TOL_A`` = 1e-2 Å max
   absolute difference over the atoms present.
Writes ``check.json`` into ``--out``; exit code 1 when a check fails.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

COORD_TOL_A = 1e-2


def kernel_check() -> dict:
    import torch

    from .compat import prepare

    prepare()
    import attn_core_inplace_cuda as kernel

    x = torch.randn(4, 8, 64, 96, device="cuda")
    want = torch.softmax(x, dim=-1)
    kernel.forward_(x, x.shape[:-1].numel(), x.shape[-1])
    err = (x - want).abs().max().item()
    return {"check": "cuda attention kernel vs torch.softmax", "max_abs_err": err, "ok": err < 1e-5}


def fold_coords(preset: str, length: int, device: str, seed: int = 7):
    """Final atom positions and mask of a fully random model on ``device``."""
    import torch

    from ...bench.common import synthetic_sequence
    from ...targets import Target
    from .compat import prepare
    from .folder import forward, make_features
    from .presets import build_openfold_config, get_preset
    from .settings import apply

    prepare()
    from openfold.model.model import AlphaFold

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    of_config = build_openfold_config(get_preset(preset))
    torch.manual_seed(seed)
    model = AlphaFold(of_config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    apply("default", model)
    dev = torch.device(device)
    model = model.to(dev)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "aln").mkdir()
        _, feats = make_features(Target("cmp", synthetic_sequence(length)), Path(tmp) / "aln",
                                 of_config)
    out = forward(model, feats, dev)
    return out["final_atom_positions"].cpu().double(), out["final_atom_mask"].cpu().bool()


def compare_devices(preset: str, length: int) -> dict:
    cpu, mask = fold_coords(preset, length, "cpu")
    gpu, _ = fold_coords(preset, length, "cuda")
    diff = (cpu - gpu).abs()[mask].max().item()
    spread = cpu[mask].std().item()
    return {"check": f"CPU vs CUDA coordinates, {preset}, L={length}", "max_abs_diff_A": diff,
            "tolerance_A": COORD_TOL_A, "coord_std_A": spread,
            "ok": diff <= COORD_TOL_A and spread > 1.0}


def recording_check(preset: str, length: int) -> dict:
    from ...memory.measure import run_point

    row = run_point(length, "default", preset, "cuda")
    ok = (row.get("error") is None and row.get("warmup") is True
          and 0 < row["peak_cuda_alloc_mb"] <= row["peak_cuda_reserved_mb"]
          and row["inference_s"] > 0)
    return {"check": f"{preset} on CUDA: warm-up, sync, peak memory", **row, "ok": bool(ok)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--compare-lengths", default="tiny:64,demo:48")
    args = p.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("gpucheck: CUDA is not available", file=sys.stderr)
        return 1
    results = [kernel_check(), recording_check("tiny", 96), recording_check("demo", 128)]
    for spec in args.compare_lengths.split(","):
        preset, length = spec.split(":")
        results.append(compare_devices(preset, int(length)))
    for r in results:
        print(("PASS " if r["ok"] else "FAIL ") + json.dumps(r, default=str))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "check.json").write_text(json.dumps(
        {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
         "cuda": torch.version.cuda, "results": results}, indent=1, default=str))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
