"""OpenFold3 runner settings: the runner YAML both our warm runner and ``run_openfold`` read.

One dictionary, written once per run as the runner YAML (JSON is valid YAML, so no YAML writer
is needed), so the warm runner and OpenFold3's own CLI see the same settings in the
faithfulness test. CPU needs (FACTS): the CPU accelerator, Triton triangle kernels off, the
MSA server off (it retries the public server for minutes without internet).
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

# The reduced configuration (FACTS: 33.6 M parameters, 12-14 s a query on this CPU): enough of
# every module to exercise the real code paths in tests; its predictions mean nothing.
REDUCED_ARCHITECTURE = {
    "shared": {"num_recycles": 0, "diffusion": {"no_full_rollout_steps": 10}},
    "pairformer": {"no_blocks": 2},
    "msa": {"msa_module": {"no_blocks": 1}},
    "template": {"template_pair_stack": {"no_blocks": 1}},
    "diffusion_module": {"diffusion_transformer": {"no_blocks": 2}},
}
CONFIGURATIONS = ("full", "reduced")


def model_update(configuration: str = "reduced", accelerator: str = "cpu") -> dict:
    """OpenFold3's ``model_update`` section: the predict preset plus our changes."""
    if configuration not in CONFIGURATIONS:
        raise ValueError(f"unknown OpenFold3 configuration {configuration!r}; one of "
                         f"{', '.join(CONFIGURATIONS)}")
    custom: dict = {}
    if configuration == "reduced":
        custom["architecture"] = copy.deepcopy(REDUCED_ARCHITECTURE)
    if accelerator == "cpu":
        custom["settings"] = {"memory": {"eval": {"use_triton_triangle_kernels": False}}}
    return {"presets": ["predict"], "custom": custom}


def runner_settings(configuration: str = "reduced", accelerator: str = "cpu",
                    num_diffusion_samples: int = 1, seeds: list[int] | None = None,
                    use_templates: bool = False) -> dict:
    """The runner YAML's content.

    ``num_workers: 0`` keeps featurisation in the worker process: a warm runner would otherwise
    fork a data-loader pool for every query, and on a 2-core machine the pool only competes
    with the model for CPU.
    """
    if num_diffusion_samples < 1:
        raise ValueError("num_diffusion_samples must be at least 1")
    update = model_update(configuration, accelerator)
    update["custom"].setdefault("architecture", {}).setdefault("shared", {}).setdefault(
        "diffusion", {})["no_full_rollout_samples"] = num_diffusion_samples
    return {
        "experiment_settings": {"mode": "predict", "seeds": list(seeds or [42]),
                                "use_msa_server": False, "use_templates": use_templates},
        "pl_trainer_args": {"accelerator": accelerator, "devices": 1},
        "data_module_args": {"num_workers": 0, "multiprocessing_context": None},
        "model_update": update,
        "output_writer_settings": {"structure_format": "cif",
                                   "full_confidence_output_format": "npz",
                                   "full_confidence_output_dtype": "float32"},
    }


def write_runner_yaml(path: str | Path, settings: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=1, sort_keys=True) + "\n")
    return path
