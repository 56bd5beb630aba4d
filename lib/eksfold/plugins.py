"""Lazy loading of registered implementations (stores, executors) by "module:Class" name.

Registries name their classes as strings so that optional dependencies (boto3, the kubernetes
client) are imported only when that implementation is used, with an install hint if missing.
"""
from __future__ import annotations

import importlib

from .errors import MissingDependencyError


def load_registered(target: str, hint: str = ""):
    """Import ``"package.module:Name"`` and return ``Name``; a missing package gets ``hint``."""
    module, name = target.split(":")
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise MissingDependencyError(exc.name or module, hint) from exc
