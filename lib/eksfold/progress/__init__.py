"""Progress of a run, per stage and per target, for the terminal and for notebooks.

Executors do not print; the driver calls a :class:`Reporter`: ``start(run, status)`` once,
``update(stage, target, state, detail)`` on every change, ``close()`` at the end. Every
reporter keeps the same :class:`Board` of unit states (:mod:`eksfold.contracts` names them),
so the local and Kubernetes executors show the same display: :class:`TextProgress`
(:mod:`.text`) and :class:`~.widgets.WidgetProgress` (ipywidgets, :mod:`.widgets`).
"""
from __future__ import annotations

import logging
from typing import Protocol

from ..contracts import TERMINAL  # noqa: F401
from ..errors import MissingDependencyError
from .board import Board  # noqa: F401
from .text import TextProgress

log = logging.getLogger(__name__)
WIDGETS_HINT = "the run monitor needs ipywidgets: run `make setup` (or pip install ipywidgets)"


class Reporter(Protocol):
    def start(self, run, status: dict) -> None: ...
    def update(self, stage: str, target: str, state: str, detail: str | None = None) -> None: ...
    def close(self, interrupted: bool = False) -> None: ...


def in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


def make_reporter(kind: str = "auto") -> Reporter:
    """"text", "widget", or "auto" (widgets inside a Jupyter kernel, text elsewhere)."""
    if kind == "widget" or (kind == "auto" and in_notebook()):
        try:
            from .widgets import WidgetProgress
        except ImportError as exc:
            if kind == "widget":
                raise MissingDependencyError("ipywidgets", WIDGETS_HINT) from exc
            log.warning("showing progress as text: %s", WIDGETS_HINT)
            return TextProgress()
        return WidgetProgress()
    return TextProgress()
