"""Stages: the steps a target goes through, one registered class each (:class:`Stage`).

``align`` (MSAs from sequence databases, CPU) -> ``infer`` (the preset's model back end, GPU)
-> ``relax`` (optional Amber relaxation, CPU); ``score`` (optional, CPU: accuracy against
reference structures, when the run has them). Adding a stage = one module with a :class:`Stage` subclass +
one :func:`register_stage` line here + its tests (docs/DESIGN.md shows an example).

>>> stage_names()
('align', 'infer', 'relax', 'score')
>>> get_stage("infer").depends_on
'align'
"""
from __future__ import annotations

import os

from ..errors import ConfigError
from ..plugins import load_registered
from .base import Resources, Stage  # noqa: F401

PLUGIN_ENV = "EKSFOLD_STAGES"
# name -> "module:Class", in pipeline order; classes load on first use (no torch on import)
_REGISTRY: dict[str, str] = {}


def register_stage(name: str, target: str) -> None:
    """Register a stage class (``"package.module:Class"``) under ``name``, after the others."""
    _REGISTRY[name] = target


def get_stage(name: str) -> type[Stage]:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown stage {name!r}; stages are {', '.join(_REGISTRY)}")
    return load_registered(_REGISTRY[name])


def stage_names(config=None) -> tuple[str, ...]:
    """Every registered stage, or those a run with ``config`` includes, in pipeline order."""
    return tuple(n for n in _REGISTRY if config is None or get_stage(n).enabled(config))


def depends_on(name: str) -> str | None:
    return get_stage(name).depends_on



register_stage("align", "eksfold.stages.align:AlignStage")
register_stage("infer", "eksfold.stages.infer:InferStage")
register_stage("relax", "eksfold.stages.relax:RelaxStage")
register_stage("score", "eksfold.stages.score:ScoreStage")

# Stages from elsewhere (a plugin package, a test): EKSFOLD_STAGES="name=module:Class,..."; the
# variable reaches worker processes and Pods, so every process sees the same registry.
for _entry in filter(None, os.environ.get(PLUGIN_ENV, "").split(",")):
    register_stage(*_entry.split("=", 1))

STAGES = ("align", "infer", "relax", "score")   # the built-in stages (stage_names(): all registered)
