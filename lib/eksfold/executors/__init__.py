"""Executors: where work units run. ``local`` (subprocesses, the default) and ``kubernetes``
(Jobs on EKS) share one interface and one driver loop (:func:`execute`)."""
from .base import Executor, UnitEvent, execute, get_executor, plan, register_executor  # noqa: F401
