"""Model back ends: the registry by preset, the openfold2 family's answers, and what adding a
family takes (one package + one registration line), shown with a throwaway back end that
goes through the real pipeline, worker processes and summary."""
import os
import textwrap

import pytest

from eksfold.config import DatabaseConfig
from eksfold.errors import ConfigError
from eksfold.models import (AlignInputs, ModelBackend, backend_class, family_of, get_backend,
                            preset_names, register_family)
from eksfold.pipeline import run_pipeline
from eksfold.progress import TextProgress
from eksfold.results import load_summary
from eksfold.targets import Target

# The whole diff that adds a family: this package (plus one register_family line, here done
# through EKSFOLD_MODELS so that the worker subprocesses see it too).
EXAMPLE_FAMILY = '''
"""A throwaway family: every target folds into an ideal alpha helix of C-alpha atoms."""
import math
from pathlib import Path

import numpy as np

from eksfold.models import AlignInputs, ModelBackend, SettingInfo


class HelixFolder:
    def __init__(self, config):
        self.timings, self.setting = {"model_load_s": 0.0}, None
        self.device = self.device_type = "cpu"

    def apply_setting(self, name):
        self.setting = name

    def fold(self, target, alignment_dir, out_dir):
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        lines = []
        for i, aa in enumerate(target.sequence, start=1):   # 3.6 residues/turn, 1.5 A rise
            x, y, z = 2.3 * math.cos(i * 1.745), 2.3 * math.sin(i * 1.745), 1.5 * i
            lines.append(f"ATOM  {i:5d}  CA  ALA A{i:4d}    {x:8.3f}{y:8.3f}{z:8.3f}"
                         f"  1.00 70.00           C")
        (out / "unrelaxed.pdb").write_text("\\n".join(lines + ["END", ""]))
        np.save(out / "plddt.npy", np.full(target.length, 70.0, dtype=np.float32))
        rows = sum(1 for p in Path(alignment_dir).glob("*.sto"))
        return {"mean_plddt": 70.0, "ptm": None, "preset": "helix", "msa_files": rows,
                "feature_s": 0.0, "inference_s": 0.0, "untrained": True, "weights": "none",
                "device": "cpu", "setting_used": self.setting}


class Helix(ModelBackend):
    family = "helix"
    title = "ideal helices (a test family)"
    confidence = {"mean_plddt": "constant 70"}
    as_built_setting = None
    default_setting = "plain"

    @classmethod
    def presets(cls):
        return ("helix",)

    def inputs(self, templates=None):
        return AlignInputs(msas=("uniref90",))

    def load(self, config):
        return HelixFolder(config)

    def ladder(self, device_type="cpu", names=None):
        return [SettingInfo("plain")]

    def refuse(self, target):
        return "helices need 20 residues or more" if target.length < 20 else None
'''


def test_presets_name_their_family():
    assert family_of("model_1_ptm") == family_of("tiny") == family_of("demo+long") == "openfold2"
    assert {"model_1_ptm", "finetuning_no_templ_ptm", "tiny"} <= set(preset_names())
    with pytest.raises(ConfigError, match="unknown preset 'model_9'"):
        get_backend("model_9")
    with pytest.raises(ConfigError, match="unknown preset option"):
        get_backend("tiny+fast")


def test_openfold2_declares_its_inputs_templates_ladder_and_refusals():
    of2 = get_backend("model_1_ptm")
    assert isinstance(of2, ModelBackend) and of2.family == "openfold2"
    # OpenFold's template presets: templates on by default, as run_pretrained_openfold.py
    assert of2.inputs() == AlignInputs(msas=("uniref90", "mgnify", "bfd", "small_bfd"),
                                       template_hits=("pdb70",))
    assert of2.inputs(templates=False).template_hits == ()
    no_templ = get_backend("finetuning_no_templ_ptm")
    assert not no_templ.uses_templates() and no_templ.inputs().template_hits == ()
    with pytest.raises(ConfigError, match="trained without templates"):
        no_templ.inputs(templates=True)
    assert [s.name for s in of2.ladder("cpu")] == ["default", "chunk", "lma"]
    assert [s.name for s in of2.ladder("cuda") if s.low_memory] == ["lma", "offload"]
    assert of2.next_lower("chunk") == "lma" and of2.next_lower("lma") is None
    assert of2.predicted_seconds(200) > of2.predicted_seconds(100) > 0
    assert of2.resources(2000) == (8, 64, 1)
    assert of2.refuse(Target("ok", "MKTAYIAKQRQISFVKSHFSRQ")) is None
    assert "one protein chain" in of2.refuse(Target("pair", "MKTAYIAKQR:QISFVKSHFSRQ"))


def test_the_template_default_matches_openfolds_own_config():
    """The static list of template-free presets agrees with OpenFold's config of each."""
    from eksfold.models.openfold2.presets import OPENFOLD_PRESETS, Preset, build_openfold_config

    for name in OPENFOLD_PRESETS:
        enabled = bool(build_openfold_config(Preset(name, name)).model.template.enabled)
        assert get_backend(name).uses_templates() == enabled, name


def test_a_new_family_is_one_package(tmp_path, small_db, monkeypatch, worker_env):
    plugin = tmp_path / "plugin"
    (plugin / "helixfold").mkdir(parents=True)
    (plugin / "helixfold" / "__init__.py").write_text(textwrap.dedent(EXAMPLE_FAMILY))
    monkeypatch.syspath_prepend(str(plugin))
    monkeypatch.setenv("PYTHONPATH", f"{plugin}{os.pathsep}{os.environ['PYTHONPATH']}")
    monkeypatch.setenv("EKSFOLD_MODELS", "helix=helixfold:Helix")
    register_family("helix", "helixfold:Helix")
    try:
        assert family_of("helix") == "helix" and backend_class("helix").__name__ == "Helix"
        fasta = tmp_path / "in.fasta"
        fasta.write_text(">a\nMKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDG\n"
                         ">short\nMVLSPADKTNVKAAWGK\n")
        run = run_pipeline(fasta, str(tmp_path / "run"), preset="helix", weights="random",
                           databases=DatabaseConfig(uniref90=str(small_db)), settings="plain",
                           stages=("align", "infer"), reporter=TextProgress(bars=False))
        df = load_summary(run.root).set_index("target")
        assert df.loc["a", "infer_status"] == "done" and df.loc["a", "mean_plddt"] == 70.0
        assert df.loc["a", "preset"] == "helix"
        rec = run.record("infer", "a")
        assert rec.metrics["msa_files"] >= 1 and rec.metrics["setting_used"] == "plain"
        assert {"unrelaxed.pdb", "unrelaxed.cif", "plddt.npy"} <= set(rec.outputs)
        # the family's own refusal rule, recorded before any work
        assert df.loc["short", "infer_status"] == "invalid"
        assert "20 residues" in df.loc["short", "error"]
    finally:
        from eksfold.models import _REGISTRY
        _REGISTRY.pop("helix", None)
