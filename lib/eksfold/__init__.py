"""eksfold: OpenFold structure prediction at scale, from a laptop to Amazon EKS.

A *run* is a directory (local path or ``s3://`` URI) holding a manifest, per-target outputs
and a summary table. Work is split into *units* ``(stage, target)`` that one worker entrypoint
executes, locally as subprocesses or as Kubernetes Jobs.

>>> import eksfold
>>> run = eksfold.run_pipeline("targets.fasta", root="runs/demo", preset="tiny")  # doctest: +SKIP
>>> eksfold.load_summary("runs/demo")                                               # doctest: +SKIP
"""
from .version import __version__  # noqa: F401

from .errors import EksfoldError  # noqa: F401


def __getattr__(name):
    # Lazy top-level conveniences: importing eksfold must not import torch or OpenFold.
    if name == "run_pipeline":
        from .pipeline import run_pipeline
        return run_pipeline
    if name == "load_summary":
        from .results import load_summary
        return load_summary
    raise AttributeError(name)
