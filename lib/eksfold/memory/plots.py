"""The time/memory trade-off figure of a settings sweep (matplotlib Figure, not pyplot)."""
from __future__ import annotations

import numpy as np

from ..plots import _colours, _figure
from .chooser import crossovers


def plot_settings_tradeoff(df, model, budget_mb: float | None = None, margin: float = 0.15,
                           max_length: int | None = None):
    """Time and peak memory against length per setting: measured points and fitted curves.

    The memory panel draws ``budget_mb`` (default: 80 % of the largest measured peak, to
    show where the choice would switch) and both panels mark the crossover lengths where the
    automatic choice changes setting under it.
    """
    df = df[df["error"].isna()] if "error" in df else df
    fig, (ax_t, ax_m) = _figure(2, 2, size=(5.6, 4.0))
    lmax = max_length or int(df["length"].max() * 2.5)
    xs = np.linspace(max(1, df["length"].min() * 0.5), lmax, 200)
    mem = model.memory_metric
    for setting, colour in zip(model.settings, _colours()):
        g = df[df["setting"] == setting]
        for ax, metric in ((ax_t, "inference_s"), (ax_m, mem)):
            if metric in g:
                ax.scatter(g["length"], g[metric], color=colour, s=20, zorder=3)
            fit = model.fits.get((setting, metric))
            if fit is not None:
                ax.plot(xs, [fit.predict(x) for x in xs], color=colour, lw=1.5,
                        label=f"{setting} ({fit.form}, LOO ≤{100 * fit.loo_max_error:.0f}%)")
    if budget_mb is None:
        budget_mb = 0.8 * float(df[mem].max())
    ax_m.axhline(budget_mb, color="black", ls="--", lw=1)
    ax_m.text(xs[0], budget_mb, f" budget {budget_mb:,.0f} MB (margin {margin:.0%})",
              va="bottom", fontsize=8)
    switches = crossovers(model, budget_mb, np.arange(16, lmax + 1, 4), margin)
    for i, (L, name) in enumerate(switches[1:]):
        for ax in (ax_t, ax_m):
            ax.axvline(L, color="grey", ls=":", lw=1)
        ax_m.text(L, 0.97 - 0.07 * (i % 3), f" {name} from L={L}", va="top", fontsize=8,
                  color="dimgrey", transform=ax_m.get_xaxis_transform())
    first = switches[0][1] if switches else "?"
    device = getattr(model, "device", "")
    ax_t.set(xlabel="sequence length (residues)", ylabel="inference time (s)",
             title=f"Time per setting ({device}, preset {model.preset})")
    ax_m.set(xlabel="sequence length (residues)",
             ylabel="peak GPU memory reserved (MB)" if mem.startswith("peak_cuda") else "peak RSS (MB)",
             title=f"Memory per setting; automatic choice starts with {first}")
    for ax in (ax_t, ax_m):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="center left")
    if df.get("untrained") is not None and df["untrained"].astype(str).eq("True").any():
        fig.suptitle("untrained random weights: runtime and memory only", fontsize=9)
    return fig


def plot_profiles(preset: str = "demo", budget_mb: float | None = None) -> dict:
    """One trade-off figure per committed profile (``cpu-2core``, ``gpu-*`` when present).

    The notebook's one call: ``for name, fig in plot_profiles().items(): display(fig)``.
    """
    import pandas as pd

    from .costmodel import PROFILES, CostModel

    suffix = "" if preset == "demo" else f"-{preset}"
    figures = {}
    for csv in sorted(PROFILES.glob(f"*/settings{suffix}.csv")):
        df = pd.read_csv(csv)
        device = "cuda" if (df["device"] == "cuda").any() else "cpu"
        figures[csv.parent.name] = plot_settings_tradeoff(df, CostModel.fit(df, device), budget_mb)
    return figures
