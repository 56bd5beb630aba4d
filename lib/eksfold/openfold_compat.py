"""What OpenFold 0.0.1 (the PyPI sdist) needs to run unchanged on today's stack and on CPU.

Call :func:`prepare` before using OpenFold. It is idempotent and changes exactly three things:

1. ``openfold.config`` calls ``importlib.util.find_spec`` after a bare ``import importlib``;
   on Python 3.11 ``importlib.util`` is only present once someone imported it.
2. ``torch`` must be imported before the extension ``attn_core_inplace_cuda`` (it links
   against torch's libraries).
3. Without nvcc the sdist builds a CPU stub of that extension whose ``forward_`` (an in-place
   softmax over the last dimension) raises on CPU. OpenFold calls it in two places at inference:
   ``openfold.utils.kernel.attention_core`` (extra-MSA stack) and the IPA of the structure
   module (``inplace_safe``). For CPU tensors we compute the same softmax in place with
   torch; CUDA tensors still go to the compiled kernel.
"""
from __future__ import annotations

import importlib
import importlib.util  # noqa: F401  (fix 1: makes importlib.util visible to openfold.config)
import warnings

_PREPARED = False


def _softmax_inplace_fallback(original):
    def forward_(logits, rows, cols):
        if logits.is_cuda:
            return original(logits, rows, cols)
        import torch

        # Same contract as the kernel: softmax over the last dim of a contiguous tensor, in place.
        logits.copy_(torch.softmax(logits, dim=-1))
        return None

    forward_.__wrapped__ = original
    return forward_


def prepare() -> None:
    """Make OpenFold importable and runnable on CPU (see the module docstring)."""
    global _PREPARED
    if _PREPARED:
        return
    import torch  # noqa: F401  (fix 2: before the extension module)

    # OpenFold 0.0.1 predates these deprecations; they flood every unit's log otherwise.
    warnings.filterwarnings("ignore", message="Using a non-tuple sequence for multidimensional")
    warnings.filterwarnings("ignore", module="Bio.Data.SCOPData")
    warnings.filterwarnings("ignore", message="The 'Bio.Data.SCOPData' module")
    warnings.filterwarnings("ignore", message=r"torch.get_autocast_gpu_dtype\(\) is deprecated")
    kernel = importlib.import_module("attn_core_inplace_cuda")
    kernel.forward_ = _softmax_inplace_fallback(kernel.forward_)
    _PREPARED = True


def versions() -> dict:
    """Versions of the pieces that determine a prediction, for manifests and metrics."""
    import numpy
    import torch

    out = {"torch": torch.__version__, "numpy": numpy.__version__,
           "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}
    try:
        from importlib.metadata import version
        out["openfold"] = version("openfold")
    except Exception:  # not installed: reported, not fatal here
        out["openfold"] = None
    return out
