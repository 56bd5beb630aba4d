"""Run-root storage: one small interface for local directories and object stores.

A run root is a local path or a URI such as ``s3://bucket/prefix``; :func:`open_store` returns
its :class:`Store` (:mod:`.base`): :class:`LocalStore` (:mod:`.local`) for paths, ``S3Store``
(:mod:`.s3`, boto3) for ``s3://``. Other schemes register by name, imported lazily with an
install hint (as fsspec does). All S3 access in eksfold goes through :mod:`.s3`.

>>> store = open_store("runs/demo")          # doctest: +SKIP
>>> store.write_json("manifest.json", {"a": 1})   # doctest: +SKIP
"""
from __future__ import annotations

import os

from ..errors import StorageError
from ..plugins import load_registered
from .base import Store  # noqa: F401
from .local import LocalStore

# scheme -> ("module:Class", install hint); imported lazily so boto3 is optional.
_REGISTRY: dict[str, tuple[str, str]] = {}


def register_store(scheme: str, target: str, hint: str = "") -> None:
    """Register a Store class (``"module:Class"``) for URIs ``scheme://...``."""
    _REGISTRY[scheme] = (target, hint)


def split_scheme(root: str) -> tuple[str, str]:
    """``"s3://b/p"`` -> ``("s3", "b/p")``; a plain path -> ``("file", path)``."""
    root = str(root)
    if "://" in root:
        scheme, rest = root.split("://", 1)
        return scheme.lower(), rest
    return "file", root


def open_store(root: str | os.PathLike, **options) -> "Store":
    """Return the Store for a run root (local path or registered URI scheme).

    ``options`` go to a registered back end's constructor (e.g. ``anon=True`` for S3).
    """
    scheme, rest = split_scheme(str(root))
    if scheme == "file":
        return LocalStore(rest)
    if scheme not in _REGISTRY:
        raise StorageError(str(root), f"unsupported scheme {scheme!r}",
                           f"known: file, {', '.join(sorted(_REGISTRY))}")
    return load_registered(*_REGISTRY[scheme])(str(root), **options)


register_store("s3", "eksfold.storage.s3:S3Store", "S3 run roots need boto3: run `make setup`")
