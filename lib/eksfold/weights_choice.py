"""The ``published-or-random`` weights choice: trained weights where they can be had.

``make demo`` and the notebooks ask for ``--weights auto`` (alias ``published-or-random``).
:func:`choose_weights` turns that into what the run uses:

- the published parameters the preset's model back end names
  (:meth:`~eksfold.models.ModelBackend.published_weights`; for ``openfold2`` OpenFold's own,
  ``finetuning_ptm_2`` for pTM presets, ``demo`` and ``tiny`` included), downloaded once into
  the weights cache as
  ``eksfold data weights`` does it (resumable, size/ETag/SHA-256 verified); the run then treats
  them as any published weights (relax on, digest in the manifest and in every unit record);
- otherwise ``random`` (UNTRAINED), with one line saying why: bucket unreachable, download
  failed verification, object missing.

The bucket is ``$EKSFOLD_WEIGHTS_BUCKET`` (default ``s3://openfold/openfold_params``) on the
endpoint ``$EKSFOLD_S3_ENDPOINT`` / ``$AWS_ENDPOINT_URL`` (default AWS): tests point both at
the local S3 server. A reachability probe (one attempt, short timeouts) runs first, so an
offline machine falls back in seconds instead of waiting out the download's retries. A
checkpoint the back end says does not fit the preset is not used
(:meth:`~eksfold.models.ModelBackend.weights_problem`: the test-sized ``tiny`` preset cannot load
the published network; with the public bucket it is not even downloaded). Nothing here names a
model family.

>>> choose_weights("random").weights
'random'
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from .errors import ConfigError, EksfoldError
from .models import get_backend
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
    """The published parameter set the preset's model back end uses (its own name for it)."""
    found = get_backend(preset).published_weights()
    if found is None:
        raise ConfigError(f"preset {preset!r}: its model family publishes no weights")
    return found.name


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
    from .data.weights import download_weights

    backend = get_backend(preset)
    found = backend.published_weights()
    if found is None:
        return WeightsChoice(spec, "random", reason=f"preset {preset!r}: its model family "
                                                    "publishes no weights")
    name, uri = found.name, found.uri
    if found.skip:       # the back end knows the file cannot serve this preset
        return WeightsChoice(spec, "random", name, source=uri, reason=found.skip)
    why_not = _probe(uri)
    if why_not is None:
        try:
            result = download_weights(name, cache, progress=progress)
        except (EksfoldError, OSError) as exc:
            why_not = f"downloading {uri} failed: {exc}"
        else:
            unfit = backend.weights_problem(result.path, name)
            if unfit is None:
                return WeightsChoice(spec, name, name, result.sha256, uri)
            log.info("weights=%s: %s; using UNTRAINED random weights", spec, unfit)
            return WeightsChoice(spec, "random", name, None, uri,
                                 reason=f"published weights {name} do not fit: {unfit}")
    log.info("weights=%s: %s; using UNTRAINED random weights", spec, why_not)
    return WeightsChoice(spec, "random", name, source=uri,
                         reason=f"published weights {name} could not be fetched: {why_not}")
