"""Fail the image build early when nvcc and torch disagree on the CUDA release.

torch.utils.cpp_extension refuses to build an extension with an nvcc whose major version
differs from the one torch was built with; a different minor version builds but may fail to
load. Pick the base image's CUDA_VERSION to match TORCH_INDEX_URL (cu128 <-> 12.8).
"""
import re
import subprocess
import sys

import torch

nvcc = subprocess.run(["nvcc", "--version"], capture_output=True, text=True, check=True).stdout
found = re.search(r"release (\d+)\.(\d+)", nvcc)
if found is None or torch.version.cuda is None:
    sys.exit(f"cannot compare CUDA releases: nvcc says {nvcc!r}, torch.version.cuda={torch.version.cuda}")
built = tuple(int(x) for x in torch.version.cuda.split(".")[:2])
have = (int(found.group(1)), int(found.group(2)))
if built != have:
    sys.exit(f"torch {torch.__version__} was built with CUDA {built}, nvcc is {have}: "
             "set the CUDA_VERSION and TORCH_INDEX_URL build arguments to the same release")
print(f"torch {torch.__version__}: CUDA {built} == nvcc {have}")
