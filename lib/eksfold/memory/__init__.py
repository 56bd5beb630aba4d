"""Memory-aware inference: named settings, fitted cost models, automatic choice, OOM fallback.

The pieces, in the order a worker uses them:

* the model back end's settings ladder (:meth:`eksfold.models.ModelBackend.ladder`; for
  OpenFold ``default`` -> ``chunk`` -> ``lma`` -> ``offload``, fastest to most frugal), switched
  on a built model at run time (``Folder.apply_setting``);
* :mod:`.costmodel` -- time(L) and memory(L) per setting, fitted to ``eksfold bench settings``
  tables committed under ``eksfold/profiles/<machine>/``;
* :mod:`.chooser` -- :func:`~.chooser.memory_budget`, :func:`~.chooser.choose`,
  :func:`~.chooser.refuse_unfit` and :func:`~.chooser.gpu_class_for`;
* :mod:`.retry` -- :func:`~.retry.is_out_of_memory` and :func:`~.retry.fold_with_oom_fallback`;
* :mod:`.limits` -- real memory limits for child processes (tests, the zero-OOM check);
* :mod:`.plots` -- the time/memory trade-off figure.

>>> from eksfold import memory
>>> model = memory.CostModel.from_profile("cpu-2core")                     # doctest: +SKIP
>>> memory.choose(300, memory.memory_budget().mb, model).setting           # doctest: +SKIP
"""
from __future__ import annotations

from .chooser import (Budget, Choice, choose, crossovers, default_model, gpu_class_for,
                      memory_budget, refuse_unfit)
from .costmodel import CostModel, fit_curve
from .retry import fold_with_oom_fallback, is_out_of_memory

__all__ = ["Budget", "Choice", "CostModel", "choose", "crossovers", "default_model", "fit_curve",
           "fold_with_oom_fallback", "gpu_class_for", "is_out_of_memory", "memory_budget",
           "refuse_unfit"]
