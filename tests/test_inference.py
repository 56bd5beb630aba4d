"""Inference with real OpenFold code (the test-sized preset), weights round trips, and the
faithfulness check against OpenFold's own inference-script functions."""
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import random_tiny_model

from eksfold.config import InferConfig
from eksfold.errors import ConfigError
from eksfold.models.openfold2.folder import UNTRAINED_NOTE, infer_target
from eksfold.models.openfold2.compat import prepare
from eksfold.models.openfold2.presets import build_openfold_config, get_preset
from eksfold.target_files import parse_fasta

SEQ = "MVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTKTYFPHF"
MSA = "# STOCKHOLM 1.0\nq {q}\nh1 {h1}\nh2 {h2}\n//\n"


def pdb_coords(path: Path) -> np.ndarray:
    return np.array([[float(x[30:38]), float(x[38:46]), float(x[46:54])]
                     for x in Path(path).read_text().splitlines() if x.startswith("ATOM")])


@pytest.fixture
def target():
    return parse_fasta(f">t1\n{SEQ}\n")[0]


@pytest.fixture
def alignment_dir(tmp_path):
    d = tmp_path / "aln"
    d.mkdir()
    h1 = "MVLSPAEKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTKTYFPHF"
    h2 = "MVLTPEEKSAVTALWGKV-NVDEVGGEALGRLLVVYPWTQRFFESF"
    (d / "uniref90_hits.sto").write_text(MSA.format(q=SEQ, h1=h1, h2=h2[:len(SEQ)].ljust(len(SEQ), "-")))
    return d


@pytest.fixture
def checkpoint(tmp_path):
    """A tiny-preset checkpoint with every parameter random (see random_tiny_model)."""
    path = tmp_path / "tiny_random_full.pt"
    torch.save(random_tiny_model(seed=7).state_dict(), path)
    return path


def test_random_weights_are_labelled_untrained_everywhere(target, alignment_dir, tmp_path):
    m = infer_target(target, alignment_dir, InferConfig(preset="tiny"), tmp_path / "out")
    pdb = (tmp_path / "out" / "unrelaxed.pdb").read_text()
    assert m["untrained"] is True and UNTRAINED_NOTE in pdb
    plddt = np.load(tmp_path / "out" / "plddt.npy")
    assert plddt.shape == (len(SEQ),)
    # AF2's zero-initialised heads: pLDDT is exactly 50 for untrained weights.
    assert np.allclose(plddt, 50.0) and m["mean_plddt"] == 50.0
    pae = np.load(tmp_path / "out" / "pae.npy")
    assert pae.shape == (len(SEQ), len(SEQ)) and m["ptm"] is not None
    assert m["msa_rows"] == 3 and m["length"] == len(SEQ)
    assert m["inference_s"] > 0 and m["feature_s"] > 0 and m["peak_rss_mb"] > 100
    assert m["device"] == "cpu" and m["peak_cuda_mb"] is None and m["warmup"] is False
    # B-factors carry pLDDT, one value per residue.
    assert {float(x[60:66]) for x in pdb.splitlines() if x.startswith("ATOM")} == {50.0}


def test_checkpoint_saved_and_reloaded_through_the_loading_code(target, alignment_dir, checkpoint, tmp_path):
    a = infer_target(target, alignment_dir, InferConfig(preset="tiny", weights=str(checkpoint)), tmp_path / "a")
    # OpenFold training checkpoints nest the EMA weights: the loader must unwrap them.
    ema = tmp_path / "ema.pt"
    torch.save({"ema": {"params": torch.load(checkpoint)}}, ema)
    infer_target(target, alignment_dir, InferConfig(preset="tiny", weights=str(ema)), tmp_path / "b")
    ca, cb = pdb_coords(tmp_path / "a/unrelaxed.pdb"), pdb_coords(tmp_path / "b/unrelaxed.pdb")
    assert a["untrained"] is False and a["weights_sha256"] and not np.allclose(ca, 0, atol=0.1)
    assert np.abs(ca - cb).max() == 0.0
    assert a["mean_plddt"] != 50.0  # every parameter is set, so confidence heads are live


def test_wrong_shape_checkpoint_is_refused(target, alignment_dir, checkpoint, tmp_path):
    # a clear error naming the file (#21), with PyTorch's reason kept
    with pytest.raises(ConfigError, match=r"(?s)weights file .*\.pt cannot be loaded for preset "
                                          r"'model_1_ptm' .*(size mismatch|Missing key|Unexpected key)"):
        infer_target(target, alignment_dir, InferConfig(preset="model_1_ptm", weights=str(checkpoint)), tmp_path)


def test_same_structure_as_openfold_inference_script_functions(target, alignment_dir, checkpoint, tmp_path):
    """Faithfulness: OpenFold's own script_utils path vs ours, same weights/MSA/config."""
    prepare()
    from openfold.data import data_pipeline, feature_pipeline
    from openfold.np import protein
    from openfold.utils.script_utils import load_models_from_command_line, prep_output, run_model
    from openfold.utils.tensor_utils import tensor_tree_map

    ours = infer_target(target, alignment_dir, InferConfig(preset="tiny", weights=str(checkpoint), seed=0),
                        tmp_path / "ours")
    config = build_openfold_config(get_preset("tiny"))
    model, out_dir = next(load_models_from_command_line(config, "cpu", str(checkpoint), None, str(tmp_path / "ref")))
    fasta = tmp_path / "t1.fasta"
    fasta.write_text(f">t1\n{SEQ}\n")
    feature_dict = data_pipeline.DataPipeline(template_featurizer=None).process_fasta(
        fasta_path=str(fasta), alignment_dir=str(alignment_dir))
    processor = feature_pipeline.FeaturePipeline(config.data)
    np.random.seed(0)
    torch.manual_seed(1)
    processed = processor.process_features(feature_dict, mode="predict")
    processed = {k: torch.as_tensor(v, device="cpu") for k, v in processed.items()}
    out = run_model(model, processed, "t1", out_dir)
    processed = tensor_tree_map(lambda x: np.array(x[..., -1].cpu()), processed)
    out = tensor_tree_map(lambda x: np.array(x.cpu()), out)
    reference = protein.to_pdb(prep_output(out, processed, feature_dict, processor, "tiny", 200, False))
    ref_path = tmp_path / "ref.pdb"
    ref_path.write_text(reference)
    ca, cr = pdb_coords(tmp_path / "ours/unrelaxed.pdb"), pdb_coords(ref_path)
    assert ca.shape == cr.shape and ca.shape[0] > len(SEQ) * 4
    assert np.abs(ca - cr).max() <= 1e-3
    assert abs(ours["mean_plddt"] - float(out["plddt"].mean())) < 1e-3


def test_cpu_fallback_softmax_matches_plain_attention():
    prepare()
    from openfold.model.primitives import _attention
    from openfold.utils.kernel.attention_core import attention_core

    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 8, 5, 16) for _ in range(3))
    bias = torch.randn(2, 4, 1, 1, 5)
    fast = attention_core(q, k, v, bias, None)
    plain = _attention(q, k, v, [bias])
    assert torch.allclose(fast, plain, atol=1e-5)


def export_npz(model, version: str, path: Path) -> None:
    """Write ``model``'s parameters in AlphaFold's .npz layout (test helper).

    Inverts OpenFold's import translation. Multi-head weights are written with a head axis of
    1 (AlphaFold splits heads out); OpenFold's import reshapes them to the same tensors.
    """
    from openfold.utils.import_weights import ParamType, generate_translation_dict, process_translation_dict

    def to_jax(t: torch.Tensor, kind) -> np.ndarray:
        a = t.detach().cpu().numpy()
        if kind is ParamType.LinearWeight:
            return np.swapaxes(a, -1, -2)
        if kind is ParamType.LinearWeightMHA:
            return np.swapaxes(a, -1, -2)[..., None, :]
        if kind in (ParamType.LinearMHAOutputWeight, ParamType.LinearWeightOPM):
            return np.swapaxes(a, -1, -2)[..., None, :, :]
        if kind is ParamType.LinearBiasMHA:
            return a[..., None, :]
        return a

    flat = process_translation_dict(generate_translation_dict(model, version))
    arrays = {k: (np.stack([to_jax(t, p.param_type) for t in p.param]) if p.stacked
                  else to_jax(p.param, p.param_type)) for k, p in flat.items()}
    np.savez(path, **arrays)


def test_alphafold_npz_params_load_through_openfold_import(target, alignment_dir, checkpoint, tmp_path):
    prepare()
    from openfold.model.model import AlphaFold

    model = AlphaFold(build_openfold_config(get_preset("tiny")))
    model.load_state_dict(torch.load(checkpoint))
    npz = tmp_path / "params_model_1_ptm.npz"
    export_npz(model, "model_1_ptm", npz)
    a = infer_target(target, alignment_dir, InferConfig(preset="tiny", weights=str(checkpoint)), tmp_path / "pt")
    b = infer_target(target, alignment_dir, InferConfig(preset="tiny", weights=str(npz)), tmp_path / "npz")
    assert b["untrained"] is False and b["weights_file"].endswith(".npz")
    assert np.abs(pdb_coords(tmp_path / "pt/unrelaxed.pdb") - pdb_coords(tmp_path / "npz/unrelaxed.pdb")).max() <= 1e-3
    assert abs(a["mean_plddt"] - b["mean_plddt"]) < 1e-3


def test_same_structure_as_openfold_with_templates(small_db, template_db, checkpoint, tmp_path):
    """Faithfulness with templates on (issue 20): the same weights, MSA and template hits through
    OpenFold's own path -- its TemplateHitFeaturizer and DataPipeline wired as
    run_pretrained_openfold.py wires them, then script_utils' run_model/prep_output."""
    prepare()
    import shutil

    from openfold.data import data_pipeline, feature_pipeline, templates
    from openfold.np import protein
    from openfold.utils.script_utils import load_models_from_command_line, prep_output, run_model
    from openfold.utils.tensor_utils import tensor_tree_map

    from eksfold.config import AlignConfig, DatabaseConfig, RunConfig, TemplateConfig
    from eksfold.models.openfold2.folder import make_features
    from eksfold.stages.align import align_target
    from eksfold.templates import featurize, standin
    from eksfold.target_files import read_fasta

    target = {t.id: t for t in read_fasta(Path(__file__).parents[1] / "data/cameo2022/targets.fasta")}["7snc-a"]
    dbs = DatabaseConfig(uniref90=str(small_db), **standin.paths(template_db))
    aln = tmp_path / "aln"
    align_target(target, dbs, AlignConfig(cpus=2), aln, templates=TemplateConfig(enabled="on"))
    assert (aln / "pdb70_hits.hhr").is_file()
    run_config = RunConfig(databases=dbs, infer=InferConfig(preset="tiny", weights=str(checkpoint)))
    config = build_openfold_config(get_preset("tiny"))
    inputs = featurize.for_run(run_config, config)
    ours = infer_target(target, aln, run_config.infer, tmp_path / "ours", templates=inputs)
    assert ours["templates_used"] >= 1 and ours["top_template"] == "7sao_A"

    # OpenFold's own wiring (run_pretrained_openfold.py): featuriser -> DataPipeline -> features
    model, out_dir = next(load_models_from_command_line(config, "cpu", str(checkpoint), None, str(tmp_path / "ref")))
    template_featurizer = templates.TemplateHitFeaturizer(
        mmcif_dir=dbs.template_mmcif_dir, max_template_date=run_config.templates.max_template_date,
        max_hits=config.data.predict.max_templates, kalign_binary_path=shutil.which("kalign"),
        release_dates_path=None, obsolete_pdbs_path=dbs.obsolete_pdbs)
    fasta = tmp_path / "7snc-a.fasta"
    fasta.write_text(f">7snc-a\n{target.sequence}\n")
    feature_dict = data_pipeline.DataPipeline(template_featurizer=template_featurizer).process_fasta(
        fasta_path=str(fasta), alignment_dir=str(aln))
    raw, _ = make_features(target, aln, config, 0, featurize.for_run(run_config, config))
    assert feature_dict["template_aatype"].shape[0] == ours["templates_used"]
    assert sorted(raw) == sorted(feature_dict)
    for key in feature_dict:                   # template features (and all others) array by array
        a, b = np.asarray(raw[key]), np.asarray(feature_dict[key])
        assert a.dtype == b.dtype and a.shape == b.shape, key
        assert (a == b).all(), key
    processor = feature_pipeline.FeaturePipeline(config.data)
    np.random.seed(0)
    torch.manual_seed(1)
    processed = processor.process_features(feature_dict, mode="predict")
    assert processed["template_mask"].sum() == ours["templates_used"]
    # predict mode pads to max_templates slots with or without hits: the template stack's cost
    # (and the settings sweep's memory model) is that of 4 templates either way
    assert processed["template_aatype"].shape[0] == config.data.predict.max_templates == 4
    processed = {k: torch.as_tensor(v, device="cpu") for k, v in processed.items()}
    out = run_model(model, processed, "7snc-a", out_dir)
    processed = tensor_tree_map(lambda x: np.array(x[..., -1].cpu()), processed)
    out = tensor_tree_map(lambda x: np.array(x.cpu()), out)
    ref_path = tmp_path / "ref.pdb"
    ref_path.write_text(protein.to_pdb(prep_output(out, processed, feature_dict, processor, "tiny", 200, False)))
    ca, cr = pdb_coords(tmp_path / "ours/unrelaxed.pdb"), pdb_coords(ref_path)
    diff = np.abs(ca - cr).max()
    print(f"faithfulness with templates: max |dx| = {diff:.2e} A over {ca.shape[0]} atoms, "
          f"{ours['templates_used']} template(s)")
    assert ca.shape == cr.shape and ca.shape[0] > len(target.sequence) * 4
    assert diff <= 1e-3
    assert abs(ours["mean_plddt"] - float(out["plddt"].mean())) < 1e-3
    # the templates matter: the same model without them folds differently
    infer_target(target, aln, run_config.infer, tmp_path / "off")
    assert np.abs(pdb_coords(tmp_path / "off/unrelaxed.pdb") - ca).max() > 0.01
