"""Build shim for the OpenFold 0.0.1 sdist, whose setup.py imports this module.

The published sdist lacks ``scripts/utils.py``; upstream's version reports the compute
capability of the local GPU so the CUDA extension is built for it.
"""


def get_nvidia_cc():
    """Return ``(major, minor)`` of the first CUDA device, or ``(None, None)`` without one."""
    try:
        import torch
    except ImportError:
        return None, None
    if not torch.cuda.is_available():
        return None, None
    return torch.cuda.get_device_capability(0)
