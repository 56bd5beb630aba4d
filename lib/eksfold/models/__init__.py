"""Model back ends: one package per family, chosen by preset (:class:`ModelBackend`).

``openfold2``: OpenFold 0.0.1, the AlphaFold2 architecture (monomer presets ``model_1_ptm``
... ``finetuning_*``, plus ``demo`` and ``tiny``); ``openfold3``: OpenFold3 0.5 in its own
environment (complexes of proteins, RNA, DNA, ligands; presets ``of3``, ``of3-tiny``). Adding a family = a package
``eksfold/models/<family>/`` with a :class:`ModelBackend` subclass + one
:func:`register_family` line here (docs/DESIGN.md shows a throwaway one).

>>> family_of("model_1_ptm")
'openfold2'
>>> get_backend("tiny").inputs().msas[0]
'uniref90'
"""
from __future__ import annotations

import os

from ..contracts import DEFAULT_PRESET
from ..errors import ConfigError
from ..plugins import load_registered
from .base import AlignInputs, Folder, ModelBackend, PublishedWeights, SettingInfo  # noqa: F401

PLUGIN_ENV = "EKSFOLD_MODELS"
# family -> "module:Class"; classes load on first use (no torch on import)
_REGISTRY: dict[str, str] = {}


def register_family(name: str, target: str) -> None:
    """Register a back-end class (``"package.module:Class"``) for the family ``name``."""
    _REGISTRY[name] = target


def family_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def backend_class(family: str) -> type[ModelBackend]:
    if family not in _REGISTRY:
        raise ConfigError(f"unknown model family {family!r}; families are {', '.join(_REGISTRY)}")
    return load_registered(_REGISTRY[family])


def preset_names() -> list[str]:
    """Every preset of every registered family."""
    return [p for f in _REGISTRY for p in backend_class(f).presets()]


def family_of(preset: str) -> str:
    """The family whose presets include ``preset`` (``+long`` and such suffixes allowed)."""
    for family in _REGISTRY:
        if backend_class(family).accepts(preset):
            return family
    raise ConfigError(f"unknown preset {preset.partition('+')[0]!r}; choose one of "
                      f"{', '.join(preset_names())}")


def get_backend(preset: str | None = None) -> ModelBackend:
    """The back end for ``preset`` (default: the package's default preset), checked."""
    preset = preset or DEFAULT_PRESET
    backend = backend_class(family_of(preset))(preset)
    backend.check()
    return backend


register_family("openfold2", "eksfold.models.openfold2:OpenFold2")
register_family("openfold3", "eksfold.models.openfold3.backend:OpenFold3")

# Families from elsewhere (a plugin package, a test): EKSFOLD_MODELS="family=module:Class,...";
# the variable reaches worker processes and Pods, so every process sees the same registry.
for _entry in filter(None, os.environ.get(PLUGIN_ENV, "").split(",")):
    register_family(*_entry.split("=", 1))
