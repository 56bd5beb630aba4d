"""Seeded random OpenFold3 checkpoints, labelled UNTRAINED (runs in ``.venv-of3``).

No weights can be downloaded here, so tests and benchmarks build the network, initialise it
from a seed with OpenFold3's own initialisers, and save its ``state_dict`` in the
"pretrained" layout OpenFold3 loads (keys without the ``model.`` prefix). OpenFold3, like
AlphaFold, zero-initialises some final layers (pLDDT comes out exactly 50 everywhere), so every
parameter also gets seeded noise (std :data:`PERTURBATION`): the network, not only the
diffusion noise, then shapes the coordinates and confidences that tests compare. A sidecar
``<checkpoint>.json`` says UNTRAINED, how it was made and what it holds; predictions from such
a checkpoint are random structures and are labelled so wherever they are reported.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from .settings import model_update

PERTURBATION = 0.02


def label_path(checkpoint: str | Path) -> Path:
    return Path(f"{checkpoint}.json")


def read_label(checkpoint: str | Path) -> dict:
    """The sidecar label of a checkpoint; a checkpoint without one is reported as trained
    weights of unknown origin (``untrained: False``), never guessed to be random."""
    path = label_path(checkpoint)
    if path.exists():
        return json.loads(path.read_text())
    return {"untrained": False, "origin": "local file", "path": str(checkpoint)}


def make_random_checkpoint(path: str | Path, seed: int = 0,
                           configuration: str = "reduced") -> dict:
    """Build the network, initialise it from ``seed``, save its weights; return the label.

    Idempotent: an existing checkpoint with a matching label is kept (the same seed and
    configuration give the same weights, so rebuilding would only cost time).
    """
    from importlib.metadata import version

    import torch
    from openfold3.projects.of3_all_atom.project_entry import ModelUpdate, OF3ProjectEntry

    path = Path(path)
    wanted = {"untrained": True, "seed": seed, "configuration": configuration,
              "perturbation": PERTURBATION,
              "openfold3": version("openfold3")}
    if path.exists() and label_path(path).exists():
        label = read_label(path)
        if all(label.get(k) == v for k, v in wanted.items()):
            return label
    entry = OF3ProjectEntry()
    config = entry.get_model_config_with_update(ModelUpdate(**model_update(configuration)))
    torch.manual_seed(seed)
    module = entry.runner(config, log_dir=None)
    with torch.no_grad():
        for param in module.model.parameters():
            if param.is_floating_point():
                param.add_(torch.randn_like(param) * PERTURBATION)
    state = module.model.state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.part")   # two workers may race
    torch.save(state, tmp)
    tmp.replace(path)
    label = {**wanted, "parameters": sum(p.numel() for p in module.model.parameters()),
             "bytes": path.stat().st_size,
             "note": "UNTRAINED: randomly initialised weights; predictions are meaningless"}
    label_path(path).write_text(json.dumps(label, indent=1) + "\n")
    return label


def main(argv=None) -> int:
    import argparse
    parser = argparse.ArgumentParser(description="Write a seeded random OpenFold3 checkpoint "
                                                 "(UNTRAINED) and its label.")
    parser.add_argument("path")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--configuration", default="reduced")
    args = parser.parse_args(argv)
    print(json.dumps(make_random_checkpoint(args.path, args.seed, args.configuration)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
