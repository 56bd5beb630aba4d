#!/usr/bin/env bash
# Install OpenFold 0.0.1 from PyPI into the given Python environment.
# The sdist's setup.py imports torch and `scripts.utils.get_nvidia_cc`, which it does not ship
# (see shared FACTS): build without isolation, against the venv's torch, with our shim on
# PYTHONPATH. Without nvcc it compiles a CPU stub of the attention kernel; with nvcc the real one.
set -euo pipefail
python=${1:-.venv/bin/python}
here=$(cd "$(dirname "$0")" && pwd)
if "$python" -c "import torch, openfold, attn_core_inplace_cuda" 2>/dev/null; then
  echo "openfold: already installed"; exit 0
fi
PYTHONPATH="$here/openfold_build${PYTHONPATH:+:$PYTHONPATH}" \
  "$python" -m pip install -q --no-build-isolation --no-deps openfold==0.0.1
"$python" -c "import torch, openfold, attn_core_inplace_cuda; print('openfold installed:', openfold.__file__)"
