"""The ``openfold2`` family: OpenFold 0.0.1 (PyPI), the AlphaFold2 architecture, monomers.

Modules: :mod:`.presets` (preset name -> OpenFold config + overrides), :mod:`.folder`
(features, model build and weights, forward pass, outputs: a warm :class:`~.folder.Folder`),
:mod:`.settings` (the inference-settings ladder switched on a built model), :mod:`.compat`
(what OpenFold 0.0.1 needs on today's stack). :class:`OpenFold2` is what the rest of eksfold
sees of them (:class:`eksfold.models.ModelBackend`).
"""
from __future__ import annotations

from ...errors import ConfigError
from ...targets import AMBIGUOUS, AMINO_ACIDS
from ..base import AlignInputs, ModelBackend, SettingInfo
from .presets import CUSTOM, OPENFOLD_PRESETS, get_preset

# OpenFold's presets trained without templates (config: model.template.enabled = False);
# every other preset, and demo/tiny (built on model_1_ptm), uses templates by default.
NO_TEMPLATE_PRESETS = frozenset(
    [f"model_{i}{s}" for i in (3, 4, 5) for s in ("", "_ptm")]
    + ["finetuning_no_templ", "finetuning_no_templ_ptm"])
# the letters OpenFold's sequence features take (ambiguous ones map to X or a residue); one
# chain per target: a ColabFold-style complex ("A:B") is refused, not folded as one chain
ALPHABET = frozenset(AMINO_ACIDS | AMBIGUOUS)


class OpenFold2(ModelBackend):
    family = "openfold2"
    title = "OpenFold (AlphaFold2 architecture)"
    outputs = ("unrelaxed.pdb", "plddt.npy")
    confidence = {"mean_plddt": "mean predicted lDDT-Ca (0-100)",
                  "ptm": "predicted TM-score (pTM presets; None otherwise)"}
    memory_grows_with = "residues"
    as_built_setting = "openfold"   # --settings openfold: the preset's config untouched
    fixed_cost_s = 30.0             # Pod start + imports + model build + weights (+ CUDA warm-up)

    @classmethod
    def presets(cls) -> tuple[str, ...]:
        return (*CUSTOM, *OPENFOLD_PRESETS)

    @classmethod
    def setup_checks(cls) -> list[tuple[str, str, str, object]]:
        from pathlib import Path

        try:
            import torch  # noqa: F401  (before OpenFold's extension, which links against it)
            import openfold
            from openfold.model.model import AlphaFold  # noqa: F401
        except Exception as exc:  # ImportError, or a broken build raising anything
            return [("openfold", "import", "missing",
                     f"{type(exc).__name__}: {exc} (make setup runs tools/install_openfold.sh)")]
        rows = [("openfold", "import", "ok", Path(openfold.__file__).parent)]
        try:
            import attn_core_inplace_cuda  # noqa: F401  (a CPU stub without nvcc)
            rows.append(("openfold", "attention extension", "ok", "attn_core_inplace_cuda"))
        except ImportError as exc:
            rows.append(("openfold", "attention extension", "missing", exc))
        return rows

    def check(self) -> None:
        self.spec = get_preset(self.preset)   # ConfigError names the choices

    # -- inputs -----------------------------------------------------------------------------
    def uses_templates(self, requested: bool | None = None) -> bool:
        trained_with = self.spec.openfold_name not in NO_TEMPLATE_PRESETS
        if requested and not trained_with:
            raise ConfigError(f"preset {self.preset} was trained without templates; "
                              "use --no-templates or a template preset (model_1_ptm, ...)")
        return trained_with if requested is None else bool(requested)

    def inputs(self, templates: bool | None = None) -> AlignInputs:
        # run_pretrained_openfold.py reads every *.a3m/*.sto as an MSA and *.hhr as hits
        return AlignInputs(msas=("uniref90", "mgnify", "bfd", "small_bfd"),
                           template_hits=("pdb70",) if self.uses_templates(templates) else ())

    # -- published weights ------------------------------------------------------------------
    def published_weights(self):
        from .published import published_for

        return published_for(self.preset)

    def weights_problem(self, path, name: str) -> str | None:
        from .published import architecture_problem

        return architecture_problem(path, name, self.preset)

    # -- the network ------------------------------------------------------------------------
    def model_config(self):
        """OpenFold's ml_collections config for this preset (imports OpenFold)."""
        from .compat import prepare
        from .presets import build_openfold_config

        prepare()
        return build_openfold_config(self.spec)

    def load(self, config):
        from .folder import Folder

        return Folder(config).load()

    def attach_templates(self, folder, run_config) -> None:
        from ...templates.featurize import for_run   # None when the run uses no templates

        folder.templates = for_run(run_config, folder.of_config)

    def templates_per_fold(self, folder) -> int:
        # up to the preset's max_templates hits are used (OpenFold's max_hits)
        if getattr(folder, "templates", None) is None:
            return 0
        return int(folder.of_config.data.predict.max_templates)

    def features(self, target, alignment_dir, seed: int = 0):
        """(raw, processed) OpenFold features of ``target`` from its alignment folder."""
        from .folder import make_features

        return make_features(target, alignment_dir, self.model_config(), seed)

    # -- settings ladder and costs ----------------------------------------------------------
    def ladder(self, device_type: str = "cpu", names=None) -> list[SettingInfo]:
        from .settings import ladder

        return [SettingInfo(s.name, s.description, low_memory=s.use_lma)
                for s in ladder(device_type, names)]

    def next_lower(self, name: str, device_type: str = "cpu", names=None) -> str | None:
        from .settings import next_lower

        return next_lower(name, device_type, names)

    def measure_point(self, length: int, setting: str, preset: str, **options) -> dict:
        from .measure import measure_point

        return measure_point(length, setting, preset, **options)

    def predicted_seconds(self, length: int) -> float:
        # demo preset on 2 CPU cores: 24.5 s at L=100, ~L^1.77 (README benchmarks)
        return 1.0 + 0.0071 * length ** 1.77

    def resources(self, length: int) -> tuple[float, float, int]:
        return (4, 32, 1) if length <= 1000 else (8, 64, 1)

    # -- refusal ----------------------------------------------------------------------------
    def refuse(self, target) -> str | None:
        if getattr(target, "complex", None) is not None:
            kinds = ", ".join(f"{','.join(c['chain_ids'])}: {c['molecule_type']}"
                              for c in target.complex["chains"])
            return (f"preset {self.preset} ({self.family}) folds one protein chain; target "
                    f"{target.id} is a complex ({kinds}): use an OpenFold3 preset (of3)")
        odd = sorted(set(target.sequence.upper()) - ALPHABET)
        if odd:
            return (f"preset {self.preset} ({self.family}) folds one protein chain; the sequence "
                    f"holds {''.join(odd)!r}")
        return None
