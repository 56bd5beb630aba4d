"""The ``published-or-random`` weights choice: trained weights where they can be had.

``make demo`` and the notebooks ask for ``--weights auto`` (alias ``published-or-random``).
:func:`choose_weights` turns that into what the run uses:

- the preset's published OpenFold parameters (``finetuning_ptm_2`` for pTM presets,
  ``demo`` and ``tiny`` included), downloaded once into the weights cache as
  ``eksfold data weights`` does it (resumable, size/ETag/SHA-256 verified); the run then treats
  them as any published weights (relax on, digest in the manifest and in every unit record);
- otherwise ``random`` (UNTRAINED), with one line saying why: bucket unreachable, download
  failed verification, object missing.

The bucket is ``$EKSFOLD_WEIGHTS_BUCKET`` (default ``s3://openfold/openfold_params``) on the
endpoint ``$EKSFOLD_S3_ENDPOINT`` / ``$AWS_ENDPOINT_URL`` (default AWS): tests point both at
the local S3 server. A reachability probe (one attempt, short timeouts) runs first, so an
offline machine falls back in seconds instead of waiting out the download's retries. A
checkpoint whose Evoformer does not match the preset is not used (the test-sized ``tiny``
preset cannot load the published network; with the public bucket it is not even downloaded).

>>> choose_weights("random").weights
'random'
"""
from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass

from .errors import ConfigError, EksfoldError
from .weights import parse_weights

log = logging.getLogger(__name__)

AUTO_NAMES = ("auto", "published-or-random")
PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class WeightsChoice:
    """What a weights setting resolved to, and why (recorded in the run's manifest)."""
    asked: str                  # what the user wrote ("auto", "random", a name or path)
    weights: str                # what the run uses: a published name, a path/URI or "random"
    published: str | None = None     # the published name tried (auto) or used
    sha256: str | None = None        # digest of the file used (None for random)
    source: str | None = None        # the URI it was (or would have been) downloaded from
    reason: str | None = None        # why random weights were used instead (auto only)

    @property
    def untrained(self) -> bool:
        return parse_weights(self.weights).untrained

    def line(self) -> str:
        """The one line that goes at the top of a run's output and of its report."""
        if not self.untrained:
            digest = f", sha256 {self.sha256[:12]}" if self.sha256 else ""
            return f"weights: {self.weights}{digest} (published OpenFold parameters)" \
                if self.published else f"weights: {self.weights}{digest}"
        if self.reason:
            return (f"UNTRAINED random weights: {self.reason}. Structures, pLDDT and accuracy "
                    "are meaningless; runtime and memory are real.")
        return ("UNTRAINED random weights (asked for): structures, pLDDT and accuracy are "
                "meaningless; runtime and memory are real.")

    def to_dict(self) -> dict:
        return {**asdict(self), "untrained": self.untrained, "line": self.line()}


def is_auto(spec: str) -> bool:
    return str(spec).strip().lower() in AUTO_NAMES


def published_name(preset: str) -> str:
    """The published parameter set of a preset: its own when OpenFold publishes one, else
    ``finetuning_ptm_2`` for pTM presets (demo, tiny, model_N_ptm) and ``finetuning_2``."""
    from .data.weights import OPENFOLD_PARAMS
    from .models.openfold2.presets import get_preset

    p = get_preset(preset)
    own = p.name.partition("+")[0]
    for name in OPENFOLD_PARAMS:   # "finetuning_no_templ_ptm" -> "finetuning_no_templ_ptm_1"
        if name == own or (name.startswith(own + "_") and name[len(own) + 1:].isdigit()):
            return name
    return "finetuning_ptm_2" if p.is_ptm else "finetuning_2"


def _probe(uri: str) -> str | None:
    """None when ``uri`` answers a HEAD request, else why not (one attempt, short timeouts)."""
    if not uri.startswith("s3://"):
        return None   # https:// and local sources are tried by the download itself
    from botocore.exceptions import BotoCoreError, ClientError

    from .storage.s3_client import endpoint_url, make_client, parse_s3_uri, want_unsigned

    bucket, key = parse_s3_uri(uri)
    client = make_client(want_unsigned(bucket), max_attempts=1,
                         connect_timeout=PROBE_TIMEOUT_S, read_timeout=PROBE_TIMEOUT_S)
    try:
        client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchKey", "NotFound"):
            return f"{uri} does not exist"
        return f"{uri} cannot be read ({code or exc})"
    except (BotoCoreError, OSError) as exc:
        where = endpoint_url() or "AWS S3"
        return f"{where} is not reachable from this machine ({type(exc).__name__})"
    return None


def _architecture_problem(path, name: str, preset: str) -> str | None:
    """None when the checkpoint's Evoformer has the preset's number of blocks, else why not
    (the test-sized ``tiny`` preset cannot load the published 48-block parameters)."""
    import re

    import torch

    from .models.openfold2.presets import get_preset

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
    want = get_preset(preset).overrides.get("model.evoformer_stack.no_blocks", 48)
    if len(found) != want:
        return (f"{name} has {len(found)} Evoformer blocks, preset {preset!r} has {want} "
                "(published weights fit the presets demo and model_*)")
    return None


def choose_weights(spec: str, preset: str = "demo", *, cache=None,
                   progress: bool | None = None) -> WeightsChoice:
    """Resolve a weights setting; ``auto`` downloads the published weights or falls back.

    A spec other than ``auto`` is returned as it is (a named or file spec is resolved by
    the workers, as before). Never raises for ``auto``: every failure becomes the reason of
    a random-weights choice.
    """
    spec = str(spec).strip()
    if not is_auto(spec):
        return WeightsChoice(asked=spec, weights=spec,
                             published=spec if parse_weights(spec).kind == "remote"
                             and "://" not in spec else None)
    from .data.weights import download_weights, weights_uri
    from .models.openfold2.presets import get_preset

    name = published_name(preset)
    try:
        uri = weights_uri(name)
    except ConfigError as exc:
        return WeightsChoice(spec, "random", name, reason=str(exc))
    blocks = get_preset(preset).overrides.get("model.evoformer_stack.no_blocks", 48)
    if blocks != 48 and not os.environ.get("EKSFOLD_WEIGHTS_BUCKET"):
        # OpenFold publishes the 48-block network only: no point downloading 370 MB for it.
        return WeightsChoice(spec, "random", name, source=uri,
                             reason=f"preset {preset!r} is a test-sized network ({blocks} "
                                    "Evoformer blocks); OpenFold publishes weights for the full "
                                    "network only (--preset demo or model_1_ptm)")
    why_not = _probe(uri)
    if why_not is None:
        try:
            result = download_weights(name, cache, progress=progress)
        except (EksfoldError, OSError) as exc:
            why_not = f"downloading {uri} failed: {exc}"
        else:
            unfit = _architecture_problem(result.path, name, preset)
            if unfit is None:
                return WeightsChoice(spec, name, name, result.sha256, uri)
            log.info("weights=%s: %s; using UNTRAINED random weights", spec, unfit)
            return WeightsChoice(spec, "random", name, None, uri,
                                 reason=f"published weights {name} do not fit: {unfit}")
    log.info("weights=%s: %s; using UNTRAINED random weights", spec, why_not)
    return WeightsChoice(spec, "random", name, source=uri,
                         reason=f"published weights {name} could not be fetched: {why_not}")
