"""One measured point of the settings sweep for this family: build, switch, time one forward pass.

Called in a fresh process by :func:`eksfold.memory.measure.run_point` (through
:meth:`OpenFold2.measure_point`), so its peak RSS is its own; on CUDA the peak counters are
reset after a warm-up pass and the timed pass is CUDA-synchronised.
"""
from __future__ import annotations

import time
from pathlib import Path


class SweepTemplates:
    """``n`` template structures for a sweep point, featurised by OpenFold's own
    ``templates._extract_template_features`` from the template mmCIF folder (the stand-in
    ``make setup`` builds): the biggest entries, each aligned to the query residue by residue
    (query i -> template i, as far as the template reaches; the rest masked, as an alignment
    gap). The template stack computes on every template at full query length whatever their
    content, so the point's time and memory are those of ``n`` real hits; the fold itself
    means nothing (the sweep's sequences are synthetic anyway)."""

    def __init__(self, n: int, mmcif_dir: str | None = None):
        from ...errors import ConfigError

        if mmcif_dir is None:
            from ...templates.settings import default_template_databases

            mmcif_dir = default_template_databases().get("template_mmcif_dir")
        files = sorted(Path(mmcif_dir).glob("*.cif")) if mmcif_dir else []
        if len(files) < n:
            raise ConfigError(f"a sweep point with {n} templates needs {n} mmCIF files; "
                              f"{mmcif_dir or 'no template folder'} has {len(files)} (make setup)")
        self.n, self.files = n, files

    def features(self, target, alignment_dir) -> dict:
        import numpy as np
        from openfold.data import mmcif_parsing, templates

        # the n biggest files (most residues), parsed one at a time: the point's peak memory
        # is the fold's, not that of parsing the whole folder
        biggest = sorted(self.files, key=lambda p: (-p.stat().st_size, p.name))[:self.n]
        stacked = {k: [] for k in templates.TEMPLATE_FEATURES}
        for path in biggest:
            code = path.stem
            mmcif = mmcif_parsing.parse(file_id=code, mmcif_string=path.read_text()).mmcif_object
            chain, seqres = next(iter(mmcif.chain_to_seqres.items()))
            span = min(len(target.sequence), len(seqres))
            feats, _ = templates._extract_template_features(
                mmcif_object=mmcif, pdb_id=code, mapping={i: i for i in range(span)},
                template_sequence=seqres, query_sequence=target.sequence,
                template_chain_id=chain, kalign_binary_path="kalign")
            feats["template_sum_probs"] = [float(span)]
            for k in stacked:
                stacked[k].append(feats[k])
        return {k: np.stack(v, axis=0).astype(templates.TEMPLATE_FEATURES[k])
                for k, v in stacked.items()}


def measure_point(length: int, setting: str, preset: str = "demo", device: str = "auto",
                  weights: str = "random", threads: int | None = None,
                  coords_out: str | None = None, sequence: str | None = None,
                  templates: int = 0, template_mmcif_dir: str | None = None,
                  template_stack: bool = True) -> dict:
    """Build the model, switch it to ``setting`` and time one forward pass (in this process).
    ``templates``: fold with that many template structures (:class:`SweepTemplates`);
    ``template_stack`` False: the template embedding switched off, as in OpenFold's presets
    trained without templates (``model.template.enabled = False``)."""
    import resource
    import tempfile

    import numpy as np
    import torch

    from ...bench.common import synthetic_sequence
    from ...config import InferConfig
    from ...targets import Target
    from .compat import prepare
    from .folder import WARMUP_LENGTH, build_model, forward, make_features, resolve_device
    from .presets import get_preset
    from .settings import apply

    prepare()
    dev = resolve_device(device)
    if dev.type == "cpu" and threads:
        torch.set_num_threads(threads)
    cfg = InferConfig(preset=preset, weights=weights, device=str(dev))
    t0 = time.perf_counter()
    model, of_config, info = build_model(get_preset(preset), cfg, dev)
    apply(setting, model)
    if not template_stack:
        model.config.template.enabled = False   # embed_templates skipped (config.py's no-templ)
    load_s = time.perf_counter() - t0
    seq = sequence or synthetic_sequence(length)
    with tempfile.TemporaryDirectory(prefix="eksfold-settings-") as tmp:
        aln = Path(tmp) / "aln"
        aln.mkdir()  # no MSA files: the single query sequence, as in `bench inference`
        t0 = time.perf_counter()
        hits = SweepTemplates(templates, template_mmcif_dir) if templates else None
        _, processed = make_features(Target(f"bench-{len(seq)}", seq), aln, of_config,
                                     templates=hits)
        feature_s = time.perf_counter() - t0
        warm = dev.type == "cuda"  # on CPU the first pass has no kernel/allocator warm-up cost
        if warm:
            _, small = make_features(Target("warmup", seq[:WARMUP_LENGTH]), aln, of_config)
            forward(model, small, dev)
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
    t0 = time.perf_counter()
    out = forward(model, processed, dev)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    inference_s = time.perf_counter() - t0
    row = {"length": len(seq), "setting": setting, "preset": preset, "templates": templates,
           "template_stack": template_stack, "device": dev.type,
           "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
           "threads": torch.get_num_threads(), "warmup": warm,
           "inference_s": round(inference_s, 3), "feature_s": round(feature_s, 3),
           "model_load_s": round(load_s, 3),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
           "peak_cuda_alloc_mb": None, "peak_cuda_reserved_mb": None,
           "untrained": info["untrained"], "error": None}
    if dev.type == "cuda":
        row["peak_cuda_alloc_mb"] = round(torch.cuda.max_memory_allocated(dev) / 2**20, 1)
        row["peak_cuda_reserved_mb"] = round(torch.cuda.max_memory_reserved(dev) / 2**20, 1)
    if coords_out:
        np.savez(coords_out, positions=out["final_atom_positions"].cpu().numpy(),
                 mask=out["final_atom_mask"].cpu().numpy(), plddt=out["plddt"].cpu().numpy())
    return row
