"""The relax child process: ``python -m eksfold.relaxation REQUEST RESULT PARENT_PID``.

Reads the request (PDB text and settings), relaxes, writes the result as JSON; killed by the
caller at the wall-time limit, and by the kernel when the caller dies.
"""
from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

from ..alignment.tools import die_with_parent
from .settings import RelaxSettings
from .minimise import InputProblem, NotConverged, relax_in_process


def _die_with_parent(parent_pid: int) -> None:
    """SIGKILL this process when its parent dies, so a killed worker leaves no orphan."""
    die_with_parent()
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        print(f"eksfold.relaxation: caller {parent_pid} is gone; not relaxing", file=sys.stderr)
        os._exit(1)


def _child_main(request_path: str, result_path: str, parent_pid: str) -> int:
    """Entry point of the child: read the request, relax, write the result as JSON."""
    _die_with_parent(int(parent_pid))
    request = json.loads(Path(request_path).read_text())
    try:
        pdb, metrics = relax_in_process(request["pdb"], RelaxSettings.from_dict(request["settings"]))
        out, code = {"relaxed_pdb": pdb, "metrics": metrics}, 0
    except InputProblem as exc:
        out, code = {"error": str(exc), "kind": exc.kind}, 2
    except NotConverged as exc:
        out, code = {"error": str(exc), "kind": "not_converged"}, 1
    except Exception as exc:  # OpenFold/OpenMM raise bare ValueError/AssertionError
        traceback.print_exc()  # into the unit's log; the reason goes to the caller
        out, code = {"error": f"{type(exc).__name__}: {exc}"}, 1
    tmp = Path(result_path + ".tmp")
    tmp.write_text(json.dumps(out))
    tmp.replace(result_path)
    return code




sys.exit(_child_main(*sys.argv[1:4]))
