"""One point of a settings sweep measured in a fresh child process (optionally under a real
memory limit), shared by ``eksfold bench settings``, the zero-OOM check and the GPU check.

The child runs ``python -m eksfold.memory.measure --one JSON``, which asks the preset's model
back end to build its network, switch it to the setting and time one fold
(:meth:`eksfold.models.ModelBackend.measure_point`).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys


def run_point(length, setting, preset="demo", device="auto", weights="random", threads=None,
              limit_mb=None, coords_out=None, timeout=None, limit_kind="rlimit",
              sequence=None, templates=0, template_mmcif_dir=None,
              template_stack=True) -> dict:
    """The preset's back end's ``measure_point`` in a fresh subprocess (optionally under a memory limit).

    A failed point comes back as a row with ``error`` and ``returncode`` (negative: killed by
    that signal, e.g. -9 for the kernel's OOM killer under a cgroup limit).
    """
    from .limits import limited_child, peak_cgroup_mb

    args = json.dumps({"length": length, "setting": setting, "preset": preset, "device": device,
                       "weights": weights, "threads": threads, "coords_out": coords_out,
                       "sequence": sequence,
                       **({"templates": templates, "template_mmcif_dir": template_mmcif_dir}
                          if templates else {}),
                       **({} if template_stack else {"template_stack": False})})
    cmd = [sys.executable, "-m", "eksfold.memory.measure", "--one", args]
    with limited_child(limit_mb, limit_kind) as popen_kw:
        procs = popen_kw.pop("cgroup_procs", None)
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **popen_kw)
        peak = peak_cgroup_mb(procs) if procs else None
    if res.returncode == 0:
        row = json.loads(res.stdout.strip().splitlines()[-1])
        return {**row, "cgroup_peak_mb": peak} if procs else row
    tail = (res.stderr.strip().splitlines() or [f"exit code {res.returncode}"])[-1]
    if res.returncode < 0:
        tail = f"killed by signal {-res.returncode} ({tail})"
    return {"length": length, "setting": setting, "preset": preset, "templates": templates,
            "error": tail[-300:],
            "returncode": res.returncode}


def _measure_here(args: dict) -> dict:
    from ..models import get_backend

    return get_backend(args["preset"]).measure_point(**args)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        os.environ.setdefault("PYTHONWARNINGS", "ignore")
        print(json.dumps(_measure_here(json.loads(sys.argv[2])), default=str))
    else:
        sys.exit("usage: python -m eksfold.memory.measure --one JSON")
