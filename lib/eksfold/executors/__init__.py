"""Executors: where work units run. ``local`` (warm worker subprocesses, the default) and
``kubernetes`` (Jobs on EKS) share one interface (:mod:`.base`) and one driver loop
(:func:`execute`, :mod:`.driver`)."""
from .base import Executor, UnitEvent, get_executor, register_executor  # noqa: F401
from .driver import execute, plan  # noqa: F401
