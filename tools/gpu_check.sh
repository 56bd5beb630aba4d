#!/usr/bin/env bash
# The device check of issue 11, one command on a machine with one NVIDIA GPU (< 8 min):
#
#   bash tools/gpu_check.sh            # then commit lib/eksfold/profiles/gpu-<name>/
#
# 1. a venv of its own (.venv-gpu) with the project's pins and PyPI's CUDA build of torch
#    (PyPI's Linux torch wheels are CUDA builds; constraints.txt pins the +cpu one for CI);
# 2. OpenFold 0.0.1 built with nvcc (tools/install_openfold.sh): the real attention kernel.
#    nvcc from $CUDA_HOME / PATH, else PyPI's nvidia-cuda-nvcc wheel for torch's CUDA;
# 3. eksfold.models.openfold2.gpucheck: kernel vs softmax, tiny + demo on CUDA (warm-up, sync, peak
#    memory reset per point), CPU vs CUDA coordinates of the same random weights (<= 1e-2 Å);
# 4. the settings sweep on CUDA (demo preset; $GPU_LENGTHS x default,chunk,lma,offload) ->
#    profiles/gpu-<name>/settings.csv + settings.png, which the notebook and planner read;
# 5. OpenFold3 (issue 24): its own venv (.venv-of3-gpu: tools/openfold3's pins with PyPI's CUDA
#    torch), then eksfold.models.openfold3.gpucheck: the warm runner, full configuration, 5
#    samples, UNTRAINED random weights, $OF3_TOKENS single chains + a heterodimer + a
#    protein-ligand pair: seconds and GPU peak per query beside NVIDIA's NIM figures ->
#    profiles/gpu-<name>/openfold3.csv ($OF3_CHECK=0 skips it).
# Needs only this repository and the package registries. Copies the results to $OUT if set.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3.11}
venv=${GPU_VENV:-.venv-gpu}
lengths=${GPU_LENGTHS:-64,128,256,384,512}
settings=${GPU_SETTINGS:-default,chunk,lma,offload}
start=$(date +%s)
step() { echo "[gpu_check +$(( $(date +%s) - start ))s] $*"; }

command -v nvidia-smi >/dev/null || { echo "gpu_check: no nvidia-smi: not a GPU machine" >&2; exit 1; }
name=${GPU_PROFILE:-gpu-$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 \
  | tr 'A-Z' 'a-z' | sed -e 's/nvidia//' -e 's/[^a-z0-9]\+/-/g' -e 's/^-//' -e 's/-$//')}
profile=lib/eksfold/profiles/$name
mkdir -p "$profile"

step "venv $venv ($python)"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip="$venv/bin/python -m pip"
# the project's pins minus the CPU-only torch build and its index-specific deps
grep -v -E '^(torch|triton|nvidia-)' constraints.txt > "$venv/constraints-gpu.txt"
torch_pin=$(grep -E '^torch==' requirements.txt)
$pip install -q --upgrade pip setuptools wheel
$pip install -q -c "$venv/constraints-gpu.txt" "$torch_pin"
grep -v -E '^torch==' requirements.txt > "$venv/requirements-gpu.txt"
$pip install -q -r "$venv/requirements-gpu.txt" -c "$venv/constraints-gpu.txt"
$pip install -q --no-deps --no-build-isolation -e .
"$venv/bin/python" -c "import torch; assert torch.cuda.is_available(), 'torch sees no GPU'; \
print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"

step "nvcc"
if ! command -v nvcc >/dev/null && [ ! -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ]; then
  cu=$("$venv/bin/python" -c "import torch; print(torch.version.cuda)")
  $pip install -q "nvidia-cuda-nvcc-cu${cu%%.*}==${cu}.*" "nvidia-cuda-runtime-cu${cu%%.*}==${cu}.*"
  export CUDA_HOME=$("$venv/bin/python" -c "import nvidia.cuda_nvcc, os; print(os.path.dirname(nvidia.cuda_nvcc.__file__))")
fi
export CUDA_HOME=${CUDA_HOME:-$(dirname "$(dirname "$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)")")}
export PATH=$CUDA_HOME/bin:$PATH MAX_JOBS=${MAX_JOBS:-$(nproc)}
nvcc --version | tail -1

step "OpenFold 0.0.1 with the CUDA kernel"
bash tools/install_openfold.sh "$venv/bin/python"

step "CUDA checks (kernel, tiny + demo on CUDA, CPU vs GPU coordinates)"
export PYTHONUNBUFFERED=1
status=0
"$venv/bin/python" -m eksfold.models.openfold2.gpucheck --out "$profile" || status=1

step "settings sweep on CUDA: lengths $lengths x $settings (demo preset)"
"$venv/bin/python" - "$lengths" "$settings" "$profile" <<'PY' || status=1
import sys
from eksfold.bench.settings import settings_sweep
from eksfold.memory.costmodel import CostModel
from eksfold.memory.plots import plot_settings_tradeoff
lengths, settings, profile = sys.argv[1], sys.argv[2], sys.argv[3]
df = settings_sweep([int(x) for x in lengths.split(",")], settings.split(","), "demo", "cuda",
                    csv=f"{profile}/settings.csv", log=lambda m: print(m, flush=True))
model = CostModel.fit(df)
print(model.describe())
model.loo_table().to_csv(f"{profile}/settings-loo.csv", index=False)
plot_settings_tradeoff(df, model).savefig(f"{profile}/settings.png", dpi=110)
sys.exit(0 if df["error"].isna().all() else 1)
PY

if [ "${OF3_CHECK:-1}" = 1 ]; then
  of3_venv=${OF3_GPU_VENV:-.venv-of3-gpu}
  step "OpenFold3: venv $of3_venv"
  [ -x "$of3_venv/bin/python" ] || "$python" -m venv "$of3_venv"
  grep -v -E '^(torch|triton|nvidia-)' tools/openfold3/constraints.txt > "$of3_venv/constraints-gpu.txt"
  "$of3_venv/bin/python" -m pip install -q --upgrade pip
  "$of3_venv/bin/python" -m pip install -q "$(grep -E '^torch==' tools/openfold3/requirements.txt)"
  "$of3_venv/bin/python" -m pip install -q -r tools/openfold3/requirements.txt -c "$of3_venv/constraints-gpu.txt"
  "$of3_venv/bin/python" -c "import torch, openfold3; assert torch.cuda.is_available(), 'torch sees no GPU'"
  step "OpenFold3 on CUDA: tokens ${OF3_TOKENS:-64,186,384,768}, full configuration"
  EKSFOLD_OF3_PYTHON=$PWD/$of3_venv/bin/python "$venv/bin/python" -m eksfold.models.openfold3.gpucheck \
    --out "$profile" --device cuda --configuration full --tokens "${OF3_TOKENS:-64,186,384,768}" \
    --samples 5 || status=1
fi

if [ -n "${OUT:-}" ]; then cp "$profile"/* "$OUT"/ 2>/dev/null || true; fi
step "done: $profile ($(ls "$profile" | tr '\n' ' ')); status $status"
exit $status
