"""3D views and plots of runs, in one namespace: re-exports :mod:`eksfold.views` (py3Dmol,
offline 3Dmol.js, pLDDT colours) and :mod:`eksfold.plots` (matplotlib, :func:`fit_power_law`).

Nothing is defined here; notebooks use ``from eksfold import viz`` and new code may import
either module directly. Module state (whether 3Dmol.js was already inlined in this kernel)
lives in :mod:`eksfold.views`.

>>> from eksfold import viz
>>> viz.offline_3dmol()                                                 # doctest: +SKIP
>>> viz.view_structure("unrelaxed.pdb", reference="7skh.B.pdb")        # doctest: +SKIP
>>> viz.plot_runtime_vs_length(load_summary("runs/demo"))             # doctest: +SKIP
"""
from .plots import (ACCURACY, fit_power_law, fit_supported, plot_accuracy, plot_alignment_runtime,
                    plot_memory_vs_length, plot_msa_depth_vs_plddt, plot_pae, plot_plddt,
                    plot_relax_cost, plot_runtime_vs_length, plot_scaling,
                    plot_template_coverage_vs_plddt)
from .views import (PLDDT_BANDS, REFERENCE_COLOUR, THREEDMOL_MARKER, THREEDMOL_VERSION,
                    StructureView, offline_3dmol, plddt_colour, threedmol_js_path,
                    threedmol_script, view_complex, view_grid,
                    view_structure)

__all__ = [
    # views
    "PLDDT_BANDS", "REFERENCE_COLOUR", "THREEDMOL_MARKER", "THREEDMOL_VERSION", "StructureView",
    "offline_3dmol", "plddt_colour", "threedmol_js_path", "threedmol_script", "view_complex",
    "view_grid", "view_structure",
    # plots
    "ACCURACY", "fit_power_law", "fit_supported", "plot_accuracy", "plot_alignment_runtime",
    "plot_memory_vs_length", "plot_msa_depth_vs_plddt", "plot_pae", "plot_plddt",
    "plot_relax_cost", "plot_runtime_vs_length", "plot_scaling", "plot_template_coverage_vs_plddt",
]
