"""Which published OpenFold parameters a preset of this family uses, and whether a file fits.

:func:`published_for` names the parameter set (OpenFold's own for its presets, else
``finetuning_ptm_2`` for pTM presets, ``demo`` and ``tiny`` included, and ``finetuning_2``)
and where it is downloaded from (the catalogue of :mod:`eksfold.data.weights`: OpenFold's public
bucket, ``$EKSFOLD_WEIGHTS_BUCKET``), or why it is not worth fetching (the test-sized ``tiny``
network). :func:`architecture_problem` checks a downloaded checkpoint against the preset
(its Evoformer block count). Generic code (:mod:`eksfold.weights_choice`) asks the back end.
"""
from __future__ import annotations

import os
import re

from ..base import PublishedWeights
from .presets import get_preset

FULL_BLOCKS = 48    # OpenFold publishes the 48-block network only


def published_name(preset: str) -> str:
    from ...data.weights import OPENFOLD_PARAMS

    p = get_preset(preset)
    own = p.name.partition("+")[0]
    for name in OPENFOLD_PARAMS:   # "finetuning_no_templ_ptm" -> "finetuning_no_templ_ptm_1"
        if name == own or (name.startswith(own + "_") and name[len(own) + 1:].isdigit()):
            return name
    return "finetuning_ptm_2" if p.is_ptm else "finetuning_2"


def published_for(preset: str) -> PublishedWeights:
    from ...data.weights import weights_uri
    from ...errors import ConfigError

    name = published_name(preset)
    try:
        uri = weights_uri(name)
    except ConfigError as exc:
        return PublishedWeights(name, None, skip=str(exc))
    blocks = get_preset(preset).overrides.get("model.evoformer_stack.no_blocks", FULL_BLOCKS)
    if blocks != FULL_BLOCKS and not os.environ.get("EKSFOLD_WEIGHTS_BUCKET"):
        # no point downloading 370 MB that cannot load (a bucket set by hand is tried)
        return PublishedWeights(name, uri, skip=(
            f"preset {preset!r} is a test-sized network ({blocks} Evoformer blocks); OpenFold "
            "publishes weights for the full network only (--preset demo or model_1_ptm)"))
    return PublishedWeights(name, uri)


def architecture_problem(path, name: str, preset: str) -> str | None:
    """None when the checkpoint's Evoformer has the preset's number of blocks, else why not
    (the test-sized ``tiny`` preset cannot load the published 48-block parameters)."""
    import torch

    try:
        try:
            state = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        except (RuntimeError, ValueError):   # an old (non-zip) checkpoint cannot be mapped
            state = torch.load(path, map_location="cpu", weights_only=False)
        if isinstance(state, dict) and "ema" in state:
            state = state["ema"]["params"]
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a reason, not a crash
        return f"{name} is not a readable OpenFold checkpoint ({type(exc).__name__}: {exc})"
    if not isinstance(state, dict):
        return f"{name} is not an OpenFold state dict ({type(state).__name__})"
    found = {int(m[1]) for k in state for m in [re.search(r"(?:^|\.)evoformer\.blocks\.(\d+)\.", k)]
             if m}
    want = get_preset(preset).overrides.get("model.evoformer_stack.no_blocks", FULL_BLOCKS)
    if len(found) != want:
        return (f"{name} has {len(found)} Evoformer blocks, preset {preset!r} has {want} "
                "(published weights fit the presets demo and model_*)")
    return None
