"""OpenFold3 runner settings: the runner YAML both our warm runner and ``run_openfold`` read.

One dictionary, written once per run as the runner YAML (JSON is valid YAML, so no YAML writer
is needed), so the warm runner and OpenFold3's own CLI see the same settings in the
faithfulness test. CPU needs (FACTS): the CPU accelerator, Triton triangle kernels off, the
MSA server off (it retries the public server for minutes without internet). Templates: the
preprocessor settings of :func:`template_settings` (also sent per query to a warm runner).
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
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


def template_settings(mmcif_dir: str | Path, max_template_date: str,
                      output_directory: str | Path | None = None) -> dict:
    """OpenFold3's ``template_preprocessor_settings`` for a template database.

    ``structure_directory``: the template mmCIF folder (``<pdb_id>.cif``, the layout OpenFold3
    reads). ``fetch_missing_structures`` off: OpenFold3 would otherwise download a hit's
    missing entry from the PDB (no internet on workers) and write it into that folder.
    ``max_release_date``: OpenFold3 drops a template released on or after it
    (``fails_template_release_date_checks``: ``>=``), OpenFold's featuriser only one released
    after ``max_template_date``; so the day after, and ``--max-template-date`` means the same
    for both families (the newest release date allowed). OpenFold3 reads the release date from
    the mmCIF (``_pdbx_audit_revision_history``), not from a release-dates file.
    ``output_directory``: its cache entries (one ``.npz`` per chain and hits file); None: the
    warm runner's own work folder (:meth:`.runner.WarmRunner.set_templates`).
    """
    import datetime

    cutoff = datetime.date.fromisoformat(max_template_date) + datetime.timedelta(days=1)
    out = {"structure_directory": str(Path(mmcif_dir).resolve()),
           "fetch_missing_structures": False, "max_release_date": cutoff.isoformat()}
    if output_directory is not None:
        out["output_directory"] = str(output_directory)
    return out


def runner_settings(configuration: str = "reduced", accelerator: str = "cpu",
                    num_diffusion_samples: int = 1, seeds: list[int] | None = None,
                    templates: dict | None = None) -> dict:
    """The runner YAML's content; ``templates``: :func:`template_settings` (None: no templates).

    ``num_workers: 0`` keeps featurisation in the worker process: a warm runner would otherwise
    fork a data-loader pool for every query, and on a 2-core machine the pool only competes
    with the model for CPU.
    """
    if num_diffusion_samples < 1:
        raise ValueError("num_diffusion_samples must be at least 1")
    update = model_update(configuration, accelerator)
    update["custom"].setdefault("architecture", {}).setdefault("shared", {}).setdefault(
        "diffusion", {})["no_full_rollout_samples"] = num_diffusion_samples
    out = {
        "experiment_settings": {"mode": "predict", "seeds": list(seeds or [42]),
                                "use_msa_server": False, "use_templates": templates is not None},
        "pl_trainer_args": {"accelerator": accelerator, "devices": 1},
        "data_module_args": {"num_workers": 0, "multiprocessing_context": None},
        "model_update": update,
        "output_writer_settings": {"structure_format": "cif",
                                   "full_confidence_output_format": "npz",
                                   "full_confidence_output_dtype": "float32"},
    }
    if templates is not None:
        out["template_preprocessor_settings"] = dict(templates)
    return out


def write_runner_yaml(path: str | Path, settings: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=1, sort_keys=True) + "\n")
    return path


# -- the memory-settings ladder ------------------------------------------------------------------
# OpenFold3 reads these at forward time from the built model's config (model.settings is the
# ConfigDict the network was built from): OpenFold3.run_trunk / _do_inference_offload read
# settings.memory.eval (chunk_size, use_lma, offload_inference.*) on every call,
# clear_cache_between_steps at the end of each forward, and the Lightning module reads
# per_sample_atom_cutoff per batch. One is copied at construction: the confidence heads keep
# their own per_sample_token_cutoff (AuxiliaryHeadsAllAtom.__init__), so a switch sets that
# attribute too. The chunk-size tuners (tune_chunk_size) are built with the network and kept:
# they treat chunk_size as the largest size to try. So the warm runner switches a setting per
# query on the loaded network; nothing is rebuilt (tests/test_openfold3_memory.py).
@dataclass(frozen=True)
class Setting:
    """One rung: the values of OpenFold3's own memory settings it sets (``memory_eval`` are
    keys of ``settings.memory.eval``, ``offload`` of its ``offload_inference``)."""

    name: str
    description: str
    memory_eval: dict = field(default_factory=dict)
    offload: dict = field(default_factory=dict)
    clear_cache_between_steps: bool = False
    low_memory: bool = False

    def values(self) -> dict:
        """The forward-time values this setting gives, flat (records, checks)."""
        return {**{k: v for k, v in self.memory_eval.items()},
                **{f"offload_{k}": v for k, v in self.offload.items()},
                "clear_cache_between_steps": self.clear_cache_between_steps}


# OpenFold3's model_setting_presets.yml: `predict` is what `run_openfold predict` builds
# (chunk 1024 as the tuner's upper bound; confidence heads offloaded above 2,800 tokens; the
# model_config defaults: per-sample heads above 750 tokens, per-sample metrics above 10,000
# atoms); `low_mem` is its own low-memory preset (everything offloaded and per sample).
# Offloading moves tensors to host memory, so on a CPU it saves nothing; per-sample heads and
# metrics only differ with more than one diffusion sample. `lma` adds what the network
# offers beyond the presets: Staats & Rabe low-memory attention, chunk 32 (measured on CPU:
# profiles/cpu-2core/settings-of3-tiny.csv).
_PREDICT_EVAL = {"chunk_size": 1024, "use_lma": False, "per_sample_token_cutoff": 750,
                 "per_sample_atom_cutoff": 10000}
_PREDICT_OFFLOAD = {"template_module": False, "msa_module": False, "confidence_heads": True,
                    "token_cutoff": 2800}
_LOW_MEM_EVAL = {**_PREDICT_EVAL, "per_sample_token_cutoff": 0, "per_sample_atom_cutoff": 0}
_LOW_MEM_OFFLOAD = {"template_module": True, "msa_module": True, "confidence_heads": True,
                    "token_cutoff": 0}
LADDER: tuple[Setting, ...] = (
    Setting("predict", "OpenFold3's predict preset (run_openfold predict's settings)",
            _PREDICT_EVAL, _PREDICT_OFFLOAD),
    Setting("low_mem", "OpenFold3's low_mem preset: offload to host, heads and metrics per "
            "sample, caches cleared between steps", _LOW_MEM_EVAL, _LOW_MEM_OFFLOAD,
            clear_cache_between_steps=True, low_memory=True),
    Setting("lma", "low_mem + low-memory attention (Staats & Rabe), chunk 32",
            {**_LOW_MEM_EVAL, "chunk_size": 32, "use_lma": True}, _LOW_MEM_OFFLOAD,
            clear_cache_between_steps=True, low_memory=True),
)
BY_NAME = {s.name: s for s in LADDER}


def get_setting(name: str) -> Setting:
    from ...errors import ConfigError

    try:
        return BY_NAME[name]
    except KeyError:
        raise ConfigError(f"unknown OpenFold3 inference setting {name!r}; choose one of "
                          f"{', '.join(BY_NAME)}, openfold3 (as built) or auto") from None


def apply_setting(model, name: str) -> dict:
    """Switch a built OpenFold3 network (``OpenFold3`` module) to the setting ``name``;
    returns :func:`current` after the switch. Runs in ``.venv-of3``."""
    s = get_setting(name)
    settings = model.settings
    mem = settings.memory.eval
    for key, value in s.memory_eval.items():
        mem[key] = value
    for key, value in s.offload.items():
        mem.offload_inference[key] = value
    settings.clear_cache_between_steps = s.clear_cache_between_steps
    model.aux_heads.per_sample_token_cutoff = s.memory_eval["per_sample_token_cutoff"]
    return current(model)


def current(model) -> dict:
    """The forward-time memory values a built network will use now, flat like
    :meth:`Setting.values`."""
    mem = model.settings.memory.eval
    out = {k: mem[k] for k in _PREDICT_EVAL}
    out.update({f"offload_{k}": mem.offload_inference[k] for k in _PREDICT_OFFLOAD})
    out["clear_cache_between_steps"] = bool(model.settings.clear_cache_between_steps)
    out["heads_per_sample_token_cutoff"] = model.aux_heads.per_sample_token_cutoff
    return out
