"""OpenFold (AlphaFold2 architecture): features, model and outputs for one target.

The steps are the ones OpenFold's ``run_pretrained_openfold.py`` performs (DataPipeline ->
FeaturePipeline in ``predict`` mode -> ``model(batch)`` -> last recycling slice ->
``protein.from_prediction`` with pLDDT as B-factors), with honest measurements around them:
the timed forward pass excludes an optional warm-up and is CUDA-synchronised on GPU.
"""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ...config import InferConfig
from ...errors import ConfigError
from ...memory.usage import unit_peak
from ...targets import Target
from ...weights import check_weights_file, file_sha256, parse_weights, resolve_weights_path
from .compat import prepare, versions
from .presets import Preset, build_openfold_config, get_preset

log = logging.getLogger(__name__)
UNTRAINED_NOTE = ("UNTRAINED RANDOM WEIGHTS: this structure and its confidence values are "
                  "meaningless; they exist only to measure runtime and memory.")
WARMUP_LENGTH = 32


def resolve_device(spec: str = "auto"):
    import torch

    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {spec!r} requested but CUDA is not available")
    return torch.device(spec)


def load_weights(model, path: str | Path, preset: Preset) -> None:
    """Load an OpenFold ``.pt`` checkpoint or AlphaFold ``.npz`` parameters into ``model``."""
    import torch
    from openfold.utils.import_weights import import_jax_weights_

    path = Path(path)
    check_weights_file(path)
    try:
        if path.suffix == ".npz":
            import_jax_weights_(model, str(path), version=preset.openfold_name)
            return
        state = torch.load(path, map_location="cpu", weights_only=False)
        if "ema" in state:  # training checkpoints keep the EMA weights used for inference here
            state = state["ema"]["params"]
        model.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001 - any failure to read it: name the file, once
        raise ConfigError(f"weights file {path} cannot be loaded for preset {preset.name!r} "
                          f"({type(exc).__name__}: {str(exc)[:300]})") from exc


def build_model(preset: Preset, config: InferConfig, device):
    """Instantiate AlphaFold for ``preset`` and load weights; returns (model, config, info)."""
    import torch
    from openfold.model.model import AlphaFold

    of_config = build_openfold_config(preset)
    spec = parse_weights(config.weights)
    torch.manual_seed(spec.seed if spec.seed is not None else config.seed)
    model = AlphaFold(of_config).eval()
    info = {"weights": config.weights, "untrained": spec.untrained, "weights_sha256": None}
    if spec.untrained:
        log.warning(UNTRAINED_NOTE)
    else:
        path = resolve_weights_path(config.weights)
        load_weights(model, path, preset)
        info.update(weights_file=str(path), weights_sha256=file_sha256(path))
    return model.to(device), of_config, info


def make_features(target: Target, alignment_dir: str | Path, of_config, seed: int = 0,
                  templates=None):
    """OpenFold features for ``target`` from an alignment folder: (raw dict, processed dict).

    ``templates`` (:class:`eksfold.templates.featurize.TemplateInputs`) adds the template
    features of the folder's hits; without it the templates are empty, as OpenFold's with no
    hits."""
    import shutil

    import torch
    from openfold.data import data_pipeline, feature_pipeline

    from ...templates.featurize import openfold_view

    fasta = Path(alignment_dir).parent / f".{target.id}.query.fasta"
    fasta.write_text(f">{target.id}\n{target.sequence}\n")
    view = Path(alignment_dir).parent / f".{target.id}.msas"
    try:
        raw = data_pipeline.DataPipeline(template_featurizer=None).process_fasta(
            fasta_path=str(fasta), alignment_dir=str(openfold_view(alignment_dir, view)))
    finally:
        fasta.unlink(missing_ok=True)
        shutil.rmtree(view, ignore_errors=True)
    if templates is not None:   # template hook (#20): OpenFold's featuriser on the hits
        raw.update(templates.features(target, alignment_dir))
    np.random.seed(seed)
    torch.manual_seed(seed + 1)
    processed = feature_pipeline.FeaturePipeline(of_config.data).process_features(raw, mode="predict")
    return raw, processed


def _dummy_features(sequence: str, of_config):
    from openfold.data import data_pipeline, feature_pipeline

    raw = {**data_pipeline.make_sequence_features(sequence, "warmup", len(sequence)),
           **data_pipeline.make_msa_features([[sequence]], [[[0] * len(sequence)]]),
           **data_pipeline.empty_template_feats(len(sequence))}
    return feature_pipeline.FeaturePipeline(of_config.data).process_features(raw, mode="predict")


def forward(model, processed: dict, device) -> dict:
    """``model(batch)`` under no_grad, as OpenFold's run_model does (templates off if absent)."""
    import torch

    batch = {k: torch.as_tensor(v, device=device) for k, v in processed.items()}
    with torch.no_grad():
        enabled = model.config.template.enabled
        model.config.template.enabled = enabled and any("template_" in k for k in batch)
        try:
            out = model(batch)
        finally:
            model.config.template.enabled = enabled
    return out


@contextmanager
def _timed(device, into: dict, key: str):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    yield
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    into[key] = round(time.perf_counter() - start, 3)


def to_protein(out: dict, processed: dict, preset_name: str, of_config, untrained: bool):
    """Last recycling slice of the batch + outputs -> (openfold Protein, numpy outputs)."""
    from openfold.np import protein, residue_constants
    from openfold.utils.tensor_utils import tensor_tree_map

    feats = tensor_tree_map(lambda x: np.array(x[..., -1].cpu()), processed)
    result = tensor_tree_map(lambda x: np.array(x.cpu()), out)
    b_factors = np.repeat(result["plddt"][..., None], residue_constants.atom_type_num, axis=-1)
    remark = ", ".join([f"no_recycling={of_config.data.common.max_recycling_iters}",
                        f"max_templates={of_config.data.predict.max_templates}",
                        f"config_preset={preset_name}"])
    if untrained:
        remark += ". " + UNTRAINED_NOTE
    prot = protein.from_prediction(features=feats, result=result, b_factors=b_factors,
                                   chain_index=np.zeros_like(feats["aatype"]), remark=remark)
    return prot, result


class Folder:
    """A model built once (preset, weights, device) that folds many targets.

    :meth:`load` pays the fixed cost: OpenFold's set-up, the model build, loading and hashing
    the weights, and on CUDA one warm-up pass. :meth:`fold` then runs features -> forward ->
    outputs for one target. A warm worker keeps one Folder for all its units.
    """

    def __init__(self, config: InferConfig):
        self.config = config
        self.preset = get_preset(config.preset)
        self.timings: dict[str, float] = {}
        self.model = None
        self.templates = None   # eksfold.templates.featurize.TemplateInputs, set by the stage

    def load(self) -> "Folder":
        import torch

        prepare()
        self.device = resolve_device(self.config.device)
        if self.device.type == "cpu" and self.config.threads:
            torch.set_num_threads(self.config.threads)
        with _timed(self.device, self.timings, "model_load_s"):
            self.model, self.of_config, self.weights_info = build_model(
                self.preset, self.config, self.device)
        warmup = self.config.warmup
        self.warm = warmup == "on" or (warmup == "auto" and self.device.type == "cuda")
        if self.warm:
            with _timed(self.device, self.timings, "warmup_s"):
                forward(self.model, _dummy_features("M" * WARMUP_LENGTH, self.of_config),
                        self.device)
        return self

    @property
    def device_type(self) -> str:
        return self.device.type

    def apply_setting(self, name: str) -> None:
        """Switch the built model to the inference setting ``name`` (no rebuild)."""
        from .settings import apply

        apply(name, self.model)

    def fold(self, target: Target, alignment_dir: str | Path, out_dir: str | Path) -> dict:
        """Fold ``target``; write unrelaxed.pdb, plddt.npy (+ pae.npy for pTM) into ``out_dir``."""
        import torch
        from openfold.np import protein

        from ...alignment.msa import check_alignments

        check_alignments(target, alignment_dir)
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        device, timings = self.device, {}
        with _timed(torch.device("cpu"), timings, "feature_s"):
            raw, processed = make_features(target, alignment_dir, self.of_config, self.config.seed,
                                           self.templates)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        with _timed(device, timings, "inference_s"):
            out = forward(self.model, processed, device)
        peak_cuda = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
        prot, result = to_protein(out, processed, self.preset.name, self.of_config,
                                  self.weights_info["untrained"])
        (out_dir / "unrelaxed.pdb").write_text(protein.to_pdb(prot))
        np.save(out_dir / "plddt.npy", result["plddt"].astype(np.float32))
        metrics = {"mean_plddt": round(float(result["plddt"].mean()), 3), "ptm": None}
        if "predicted_aligned_error" in result:
            np.save(out_dir / "pae.npy", result["predicted_aligned_error"].astype(np.float32))
            metrics["ptm"] = round(float(result["predicted_tm_score"]), 4)
        # the unit's own peak in a warm worker (eksfold.memory.usage), lifetime otherwise
        peak_rss, peak_scope = unit_peak()
        return {
            **timings, **metrics, **self.weights_info,
            "length": target.length,
            "preset": self.preset.name,
            "openfold_preset": self.preset.openfold_name,
            "msa_rows": int(raw["msa"].shape[0]),
            **(self.templates.record if self.templates else {}),
            "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "threads": torch.get_num_threads(),
            "peak_rss_mb": peak_rss, "peak_rss_scope": peak_scope,
            "peak_cuda_mb": round(peak_cuda, 1) if peak_cuda is not None else None,
            "warmup": self.warm,
            "versions": versions(),
        }


def infer_target(target: Target, alignment_dir: str | Path, config: InferConfig,
                 out_dir: str | Path, templates=None) -> dict:
    """One call: build the model for ``config`` and fold one target (benchmarks, notebooks);
    ``templates``: a :class:`~eksfold.templates.featurize.TemplateInputs` (None: no templates)."""
    folder = Folder(config).load()
    folder.templates = templates
    return {**folder.timings, **folder.fold(target, alignment_dir, out_dir)}
