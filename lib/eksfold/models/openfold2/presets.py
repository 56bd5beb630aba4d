"""Model presets: a name -> an OpenFold model config plus overrides.

Full presets are OpenFold's own (``model_1_ptm`` ... ``model_5``, ``finetuning_*``). Suffix
``+long`` asks for OpenFold's long-sequence inference settings (lower memory, slower), the
preset long targets are sent to. ``demo`` is the full 48-block architecture without recycling
and with the smaller MSA padding of AF2's non-template presets, so a CPU demo finishes in
minutes; ``tiny`` is the same code with a test-sized network.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import ConfigError

OPENFOLD_PRESETS = (
    [f"model_{i}" for i in range(1, 6)] + [f"model_{i}_ptm" for i in range(1, 6)]
    + ["initial_training", "finetuning", "finetuning_ptm", "finetuning_no_templ",
       "finetuning_no_templ_ptm"]
)


@dataclass(frozen=True)
class Preset:
    name: str
    openfold_name: str
    overrides: dict = field(default_factory=dict)   # dotted config path -> value
    long_sequence: bool = False
    description: str = ""

    @property
    def is_ptm(self) -> bool:
        return "ptm" in self.openfold_name


# Template settings stay OpenFold's: model.template.enabled and data.common.use_templates are
# one shared reference there, and AlphaFold .npz parameters include the template modules. With
# no template hits the pipeline passes empty (masked) templates, as OpenFold's script does.
CUSTOM = {
    "demo": Preset("demo", "model_1_ptm", {
        "data.common.max_recycling_iters": 0,
        "data.predict.max_extra_msa": 1024,
        "data.predict.max_msa_clusters": 128,
    }, description="full architecture, no recycling, 1024 extra / 128 clustered MSA rows"),
    "tiny": Preset("tiny", "model_1_ptm", {
        "data.common.max_recycling_iters": 0,
        "data.predict.max_extra_msa": 16,
        "data.predict.max_msa_clusters": 8,
        "model.evoformer_stack.no_blocks": 2,
        "model.extra_msa.extra_msa_stack.no_blocks": 1,
        "model.structure_module.no_blocks": 2,
    }, description="test-sized network (2 Evoformer blocks), same code path"),
}


def get_preset(name: str) -> Preset:
    base, _, flag = name.partition("+")
    if flag not in ("", "long"):
        raise ConfigError(f"unknown preset option {flag!r} in {name!r} (only '+long')")
    if base in CUSTOM:
        preset = CUSTOM[base]
    elif base in OPENFOLD_PRESETS:
        preset = Preset(base, base)
    else:
        raise ConfigError(f"unknown preset {base!r}; choose one of "
                          f"{', '.join(list(CUSTOM) + OPENFOLD_PRESETS)}")
    if flag == "long":
        preset = Preset(name, preset.openfold_name, preset.overrides, True, preset.description)
    return preset


def build_openfold_config(preset: Preset):
    """The ml_collections config OpenFold's model and feature pipeline take."""
    from openfold.config import model_config

    config = model_config(preset.openfold_name, train=False, low_prec=False,
                          long_sequence_inference=preset.long_sequence)
    for dotted, value in preset.overrides.items():
        *parents, leaf = dotted.split(".")
        node = config
        for key in parents:
            node = node[key]
        node[leaf] = value
    return config
