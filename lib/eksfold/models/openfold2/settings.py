"""The named inference settings, fastest -> most frugal, and how to switch a built model.

OpenFold 0.0.1 reads ``globals.chunk_size``, ``globals.use_lma``, ``globals.offload_inference``
and ``globals.use_flash`` at forward time from ``model.globals`` (the same ConfigDict object
as ``of_config.globals``), so those switch on an already-built model. ``tune_chunk_size`` is
consumed at construction (each Evoformer / extra-MSA / template stack keeps a
``chunk_size_tuner``); :func:`apply` removes those tuners on a built model, because the tuner
probes chunk sizes by catching allocation failures, which makes peak memory depend on what
happens to be free instead of on the setting. Dimensions, block counts, ``eps``/``inf``
(``low_prec``) and ``blocks_per_ckpt`` need a rebuild and are not settings here.

``offload`` moves the Evoformer's pair/MSA tensors to host memory between blocks: it lowers
device (CUDA) memory and raises host memory, so on a CPU it only costs time (not in CPU sweeps).
``flash`` (FlashAttention 1.x's ``flash_attn.flash_attention``) exists only where that package
is importable; it is never assumed.
"""
from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass

from ...errors import ConfigError


@dataclass(frozen=True)
class Setting:
    """One inference setting: the ``globals`` values OpenFold reads at forward time."""

    name: str
    chunk_size: int | None
    use_lma: bool = False
    offload_inference: bool = False
    use_flash: bool = False
    description: str = ""
    device_only: bool = False      # saves device memory only (no use on a CPU)
    requires: str | None = None    # importable module it needs

    def available(self, device_type: str = "cpu") -> bool:
        if self.requires and importlib.util.find_spec(self.requires) is None:
            return False
        return device_type == "cuda" or not (self.device_only or self.use_flash)

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in ("description", "requires")}


# Fastest first. chunk 4 + LMA + offload is OpenFold's own long_sequence_inference setting
# (config.model_config(long_sequence_inference=True)), the one that folded 4,600+ residues.
LADDER: tuple[Setting, ...] = (
    Setting("flash", 32, use_flash=True, requires="flash_attn",
            description="FlashAttention kernels (CUDA, needs flash_attn), chunk 32"),
    Setting("default", None, description="no chunking, plain attention: fastest, most memory"),
    Setting("chunk", 32, description="chunked layers (chunk 32)"),
    Setting("lma", 4, use_lma=True,
            description="low-memory attention (Rabe & Staats) + chunk 4"),
    Setting("offload", 4, use_lma=True, offload_inference=True, device_only=True,
            description="OpenFold long-sequence preset: LMA, chunk 4, offload to host"),
)
BY_NAME = {s.name: s for s in LADDER}


def get_setting(name: str) -> Setting:
    try:
        return BY_NAME[name]
    except KeyError:
        raise ConfigError(f"unknown inference setting {name!r}; choose one of "
                          f"{', '.join(BY_NAME)} or 'auto'") from None


def ladder(device_type: str = "cpu", names=None) -> list[Setting]:
    """The settings usable on ``device_type`` (optionally only ``names``), fastest first."""
    return [s for s in LADDER if s.available(device_type) and (names is None or s.name in names)]


def next_lower(name: str, device_type: str = "cpu", names=None) -> str | None:
    """The next lower-memory setting after ``name`` on this device; None at the bottom."""
    order = [s.name for s in ladder(device_type, names)]
    get_setting(name)
    if name not in order:
        raise ConfigError(f"setting {name!r} is not usable on {device_type}")
    i = order.index(name)
    return order[i + 1] if i + 1 < len(order) else None


def _stacks(model):
    # The modules that own a ChunkSizeTuner in OpenFold 0.0.1
    for attr in ("evoformer", "extra_msa_stack", "template_pair_stack"):
        mod = getattr(model, attr, None)
        if mod is not None and hasattr(mod, "chunk_size_tuner"):
            yield mod
    tmpl = getattr(model, "template_embedder", None)
    if tmpl is not None and hasattr(getattr(tmpl, "template_pair_stack", None), "chunk_size_tuner"):
        yield tmpl.template_pair_stack


def apply(setting: Setting | str, target) -> None:
    """Switch ``target`` (a built AlphaFold model, or an OpenFold config) to ``setting``.

    On a config it sets the ``globals`` fields and turns ``tune_chunk_size`` off, so a model
    built from it behaves the same as a built model switched with this function.
    """
    s = get_setting(setting) if isinstance(setting, str) else setting
    if s.use_flash and importlib.util.find_spec("flash_attn") is None:
        raise ConfigError(f"setting {s.name!r} needs flash_attn, which is not installed")
    globals_ = target.globals
    # use_lma and use_flash are mutually exclusive in OpenFold: clear before setting
    globals_.use_lma = False
    globals_.use_flash = False
    globals_.chunk_size = s.chunk_size
    globals_.use_lma = s.use_lma
    globals_.use_flash = s.use_flash
    globals_.offload_inference = s.offload_inference
    if hasattr(target, "model") and hasattr(target.model, "evoformer_stack"):  # a config
        for stack in (target.model.evoformer_stack, target.model.extra_msa.extra_msa_stack,
                      target.model.template.template_pair_stack):
            stack.tune_chunk_size = False
        target.model.template.offload_inference = s.offload_inference
        return
    for stack in _stacks(target):
        stack.chunk_size_tuner = None
    if hasattr(target, "template_config"):
        target.template_config.offload_inference = s.offload_inference


def current(model) -> dict:
    """The forward-time values a model will use now (for records and checks)."""
    g = model.globals
    return {"chunk_size": g.chunk_size, "use_lma": bool(g.use_lma),
            "offload_inference": bool(g.offload_inference), "use_flash": bool(g.use_flash),
            "chunk_tuners": sum(st.chunk_size_tuner is not None for st in _stacks(model))}
