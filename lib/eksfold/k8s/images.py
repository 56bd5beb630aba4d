"""Which container image a stage's Pods run.

Most stages run the base worker image (``JobOptions.image``). A stage that loads the model
(``Stage.runs_model``: inference) runs the image its model family names
(``ModelBackend.worker_image``) when the family needs its own environment, as OpenFold3 does
(numpy 2 and biotite >= 1 beside the base image's OpenFold: ``cluster/images/worker-openfold3``).

That image is, in order: ``JobOptions.images[family]``; ``$EKSFOLD_IMAGE_<FAMILY>`` (a
JupyterHub profile sets it once, as ``$EKSFOLD_IMAGE``); else the family's repository beside
the base image, same registry and tag (``cluster/scripts/build-push.sh`` pushes both with one
``IMAGE_TAG``). A base image pinned by digest has no sibling by that digest: the family's image
must then be given.
"""
from __future__ import annotations

import os

from ..errors import ConfigError
from ..models import get_backend
from ..stages import get_stage


def family_env(family: str) -> str:
    return "EKSFOLD_IMAGE_" + family.upper().replace("-", "_")


def sibling(image: str, repository: str) -> str:
    """``image``'s registry and tag with another repository name:
    ``123.dkr.ecr.us-east-1.amazonaws.com/eksfold-worker:0.1.0`` ->
    ``123.dkr.ecr.us-east-1.amazonaws.com/eksfold-worker-openfold3:0.1.0``."""
    if "@" in image:
        raise ConfigError(f"the base image {image} is pinned by digest, which names no other "
                          f"image: give the {repository} image explicitly (executor option "
                          "images={family: ...} or $EKSFOLD_IMAGE_<FAMILY>)")
    head, _, last = image.rpartition("/")
    name, _, tag = last.partition(":")
    return f"{head + '/' if head else ''}{repository}:{tag or 'latest'}"


def stage_image(base: str, images: dict, stage: str, preset: str | None) -> str:
    """The image of ``stage``'s Pods in a run of ``preset`` (see the module's docstring)."""
    if preset is None or not get_stage(stage).runs_model:
        return base
    backend = get_backend(preset)
    if backend.worker_image is None:
        return base
    return (images.get(backend.family) or os.environ.get(family_env(backend.family))
            or sibling(base, backend.worker_image))
