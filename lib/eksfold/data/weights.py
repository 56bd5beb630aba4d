"""OpenFold model parameters: published names resolved to files in a local or shared cache.

OpenFold publishes its trained parameters in the public bucket ``s3://openfold/openfold_params/``
(read with unsigned requests). :func:`resolve_weights` turns what a user writes into a local
file, downloading (resumably, verified) only when the cache does not already hold it:

- a published name, ``"finetuning_ptm_2"`` -> ``s3://openfold/openfold_params/finetuning_ptm_2.pt``
- an ``s3://``/``https://`` URI of a checkpoint (a user's bucket or mirror)
- a local path, used as it is

The cache is ``$EKSFOLD_WEIGHTS_DIR``, else ``${EKSFOLD_CACHE:-~/.cache/eksfold}/weights``; on
the cluster it is the shared volume (``/fsx/weights``), filled once by the data-preparation Job.

>>> resolve_weights("finetuning_ptm_2")                       # doctest: +SKIP
PosixPath('/home/me/.cache/eksfold/weights/finetuning_ptm_2.pt')
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError
from .transfer import FetchResult, fetch

WEIGHTS_BUCKET = "s3://openfold/openfold_params"
# Published OpenFold parameter sets (s3://openfold/openfold_params/<name>.pt).
# finetuning_ptm_2 has the best reported validation lDDT-Ca (0.9097) and a pTM head.
OPENFOLD_PARAMS = (
    "finetuning_ptm_2", "finetuning_ptm_1",
    "finetuning_2", "finetuning_3", "finetuning_4", "finetuning_5",
    "finetuning_no_templ_1", "finetuning_no_templ_2", "finetuning_no_templ_ptm_1",
    "initial_training",
)
DEFAULT_WEIGHTS = "finetuning_ptm_2"
# Known SHA-256 digests by name; a value here is checked on every download. None are pinned yet
# (they could not be computed from these machines); a `<name>.pt.sha256` sidecar next to the
# object is used instead when the bucket publishes one, and S3's ETag/size are always checked.
KNOWN_SHA256: dict[str, str] = {}


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The weights cache: ``path``, ``$EKSFOLD_WEIGHTS_DIR`` or ``$EKSFOLD_CACHE/weights``."""
    if path:
        return Path(path).expanduser()
    if os.environ.get("EKSFOLD_WEIGHTS_DIR"):
        return Path(os.environ["EKSFOLD_WEIGHTS_DIR"]).expanduser()
    base = os.environ.get("EKSFOLD_CACHE") or "~/.cache/eksfold"
    return Path(base).expanduser() / "weights"


def weights_uri(name: str, bucket: str | None = None) -> str:
    """The URI of a published parameter set (``bucket`` overrides the public location)."""
    if name.endswith(".pt"):
        name = name[:-3]
    if name not in OPENFOLD_PARAMS:
        raise ConfigError(f"unknown OpenFold weights {name!r}; published: {', '.join(OPENFOLD_PARAMS)}"
                          " (or give a local path or an s3:// / https:// URI)")
    base = (bucket or os.environ.get("EKSFOLD_WEIGHTS_BUCKET") or WEIGHTS_BUCKET).rstrip("/")
    return f"{base}/{name}.pt"


def download_weights(spec: str = DEFAULT_WEIGHTS, cache: str | os.PathLike | None = None, *,
                     bucket: str | None = None, sha256: str | None = None,
                     progress: bool | None = None, verify: bool = False,
                     anon: bool | None = None) -> FetchResult:
    """Download a parameter set (name or URI) into the cache; skip when present and verified."""
    if "://" in spec:
        uri, name = spec, spec.rstrip("/").rsplit("/", 1)[-1]
    else:
        uri = weights_uri(spec, bucket)
        name = uri.rsplit("/", 1)[-1]
    known = sha256 or KNOWN_SHA256.get(name.removesuffix(".pt"))
    return fetch(uri, cache_dir(cache) / name, sha256=known, progress=progress,
                 verify_existing=verify, anon=anon, desc=f"weights {name}")


def resolve_weights(spec: str | os.PathLike = DEFAULT_WEIGHTS,
                    cache: str | os.PathLike | None = None, **kwargs) -> Path:
    """A local checkpoint file for ``spec`` (published name, s3:// or https:// URI, or path).

    Raises ``FileNotFoundError`` for a local path that does not exist, ``ConfigError`` for an
    unknown name, and ``StorageError`` (with a hint) when the download is denied or fails.
    """
    spec = str(spec)
    if "://" not in spec and (os.sep in spec or spec.endswith((".pt", ".pth", ".ckpt"))
                              and Path(spec).expanduser().exists()):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise FileNotFoundError(2, "weights file not found", str(path))
        return path
    return download_weights(spec, cache, **kwargs).path
