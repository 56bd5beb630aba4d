"""Progress bars for transfers, in a terminal or a notebook (``tqdm.auto``).

``transfer_bar(total, desc)`` returns a byte-counting bar that is also a boto3 ``Callback``
(call it with the number of bytes just moved). Bars are off when ``EKSFOLD_PROGRESS=0``, and
tqdm turns them off by itself when stderr is not a terminal (a Kubernetes pod's log), in which
case one summary line is printed when the transfer ends.
"""
from __future__ import annotations

import os
import sys
import threading
import time

from tqdm.auto import tqdm


def progress_enabled(progress: bool | None = None) -> bool | None:
    """``None`` lets tqdm decide (bars only on a terminal or in a notebook)."""
    if progress is not None:
        return progress
    if os.environ.get("EKSFOLD_PROGRESS", "").strip() in ("0", "false", "no", "off"):
        return False
    return None


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


class TransferBar:
    """A byte counter with a tqdm bar; callable as a boto3 transfer ``Callback``."""

    def __init__(self, total: int | None, desc: str, initial: int = 0,
                 progress: bool | None = None, log=None, unit: str = "B"):
        enabled = progress_enabled(progress)
        self.desc, self.total, self.initial, self.unit = desc, total, initial, unit
        self.count = initial
        self.started = time.perf_counter()
        self._lock = threading.Lock()  # boto3 calls back from several threads
        self._log = log if log is not None else (enabled is None and not sys.stderr.isatty())
        self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit,
                         unit_scale=unit == "B", unit_divisor=1024, disable=None if enabled is None else not enabled, leave=False,
                         dynamic_ncols=True)

    def __call__(self, nbytes: int) -> None:
        with self._lock:
            self.count += nbytes
            self._bar.update(nbytes)

    def reset(self) -> None:
        """Start counting again from zero (a download that had to restart)."""
        with self._lock:
            self.count = self.initial = 0
            self._bar.reset(self.total)

    def close(self, note: str = "") -> None:
        self._bar.close()
        if self._log:
            secs = time.perf_counter() - self.started
            moved = self.count - self.initial
            if self.unit == "B":
                rate = human_bytes(moved / secs) + "/s" if secs > 0 else "-"
                print(f"{self.desc}: {human_bytes(moved)} in {secs:.1f} s ({rate}){note}",
                      file=sys.stderr, flush=True)
            else:
                print(f"{self.desc}: {moved} {self.unit}s in {secs:.1f} s{note}",
                      file=sys.stderr, flush=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def transfer_bar(total: int | None, desc: str, initial: int = 0,
                 progress: bool | None = None, unit: str = "B") -> TransferBar:
    """A :class:`TransferBar` for ``total`` bytes (or other ``unit``) from ``initial``."""
    return TransferBar(total, desc, initial=initial, progress=progress, unit=unit)
